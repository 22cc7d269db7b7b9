//! The rows the demo pipeline must write for the demo site's homes, in the shape that
//! compares them with what it wrote.

use std::collections::BTreeMap;

use crate::demo::homes;
use crate::demo::observe::ListingRow;

/// What a listings row must hold: monthly price in minor units, beds, baths, outward code.
pub type Cleaned = (Option<i64>, i32, i32, Option<String>);

/// Listings rows by (source, listing id).
pub type CleanedRows = BTreeMap<(String, String), Cleaned>;

/// The row the pipeline must write for each demo home.
pub fn expected_rows() -> CleanedRows {
    let london = (1..=homes::LONDON_HOMES).map(homes::london_home).map(|h| {
        (
            ("london-rentals".to_owned(), h.id.to_string()),
            (
                h.monthly_pence,
                h.beds,
                h.baths,
                Some(h.outward_code.to_owned()),
            ),
        )
    });
    let la = (1..=homes::LA_HOMES).map(homes::la_home).map(|h| {
        (
            ("la-rentals".to_owned(), h.property_id),
            (Some(h.list_price * 100), h.beds, h.baths, None),
        )
    });
    london.chain(la).collect()
}

/// What `rows` hold, to compare with [`expected_rows`] (missing beds and baths as -1).
pub fn cleaned(rows: &[ListingRow]) -> CleanedRows {
    rows.iter()
        .map(|r| {
            (
                (r.source.clone(), r.listing_id.clone()),
                (
                    r.monthly_price_minor,
                    r.beds.unwrap_or(-1),
                    r.baths.unwrap_or(-1),
                    r.outward_code.clone(),
                ),
            )
        })
        .collect()
}
