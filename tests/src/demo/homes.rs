//! The homes of the demo site: generated from their number, so the demo and the
//! end-to-end tests know every value a scraper must find and every row the pipeline
//! must write, without shipping captured pages.

use serde_json::{Value, json};

/// London rentals on the JavaScript-rendered results pages.
pub const LONDON_HOMES: usize = 24;
/// London homes per results page (so [`LONDON_HOMES`] fill three pages).
pub const LONDON_PER_PAGE: usize = 8;
/// Los Angeles rentals behind the REST API.
pub const LA_HOMES: usize = 60;

const LONDON_STREETS: [&str; 6] = [
    "Caledonian Road",
    "Copenhagen Street",
    "Gray's Inn Road",
    "Liverpool Road",
    "Pentonville Road",
    "York Way",
];
const LONDON_POSTCODES: [&str; 6] = ["N7 9RN", "N1 0SJ", "WC1X 8BB", "N1 1LA", "N1 9NP", "N7 9QE"];
const LA_STREETS: [&str; 5] = [
    "N Kingsley Dr",
    "Melrose Ave",
    "N Normandie Ave",
    "Oakwood Ave",
    "N Serrano Ave",
];

/// A London rental as its results card shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LondonHome {
    /// The portal's listing number.
    pub id: u64,
    /// The price label, as a person reads it: `£2,300 pcm`, `£550 pw` or `POA`.
    pub price_label: String,
    /// The monthly rent in pence the cleaning program must compute, `None` for POA.
    pub monthly_pence: Option<i64>,
    /// Bedrooms (0 is a studio).
    pub beds: i32,
    /// Bathrooms.
    pub baths: i32,
    /// One-line address, ending with the postcode.
    pub address: String,
    /// The postcode's outward code.
    pub outward_code: &'static str,
}

/// The `number`th London home, from 1.
pub fn london_home(number: usize) -> LondonHome {
    let street = number % LONDON_STREETS.len();
    let (price_label, monthly_pence) = match number % 5 {
        // Every fifth home's price is on application.
        0 => ("POA".to_owned(), None),
        // Weekly rents: pence per week * 52 / 12, rounded.
        1 => {
            let weekly = 400 + 25 * number as i64;
            (format!("£{weekly} pw"), Some((weekly * 100 * 52 + 6) / 12))
        }
        _ => {
            let monthly = 1500 + 75 * number as i64;
            (format!("£{} pcm", thousands(monthly)), Some(monthly * 100))
        }
    };
    let postcode = LONDON_POSTCODES[street];
    LondonHome {
        id: 67_000_000 + number as u64 * 13,
        price_label,
        monthly_pence,
        beds: (number % 4) as i32,
        baths: 1 + i32::from(number.is_multiple_of(3)),
        address: format!(
            "Flat {}, {} {}, London {postcode}",
            1 + number % 9,
            10 + number,
            LONDON_STREETS[street]
        ),
        outward_code: postcode.split(' ').next().unwrap_or(postcode),
    }
}

/// The London homes of results page `page` (from 1); empty past the last page.
pub fn london_page(page: usize) -> Vec<LondonHome> {
    let first = (page.max(1) - 1) * LONDON_PER_PAGE + 1;
    (first..first + LONDON_PER_PAGE)
        .filter(|number| *number <= LONDON_HOMES)
        .map(london_home)
        .collect()
}

/// Results pages of the London search.
pub fn london_pages() -> usize {
    LONDON_HOMES.div_ceil(LONDON_PER_PAGE)
}

/// The card of one home, as the page's script renders it (`data-*` attributes carry
/// nothing the scraper reads: it reads the text people see).
pub fn london_card_json(home: &LondonHome) -> Value {
    json!({
        "id": home.id,
        "price": home.price_label,
        "beds": if home.beds == 0 { "Studio".to_owned() } else { format!("{} bed", home.beds) },
        "baths": format!("{} bath", home.baths),
        "address": home.address,
    })
}

/// A Los Angeles rental as the REST API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct LaHome {
    /// The API's property id.
    pub property_id: String,
    /// The monthly rent in dollars.
    pub list_price: i64,
    /// Bedrooms.
    pub beds: i32,
    /// Bathrooms.
    pub baths: i32,
    /// Street line.
    pub line: String,
}

/// The `number`th Los Angeles home, from 1.
pub fn la_home(number: usize) -> LaHome {
    LaHome {
        property_id: format!("{}", 9_004_000_000_u64 + number as u64 * 7),
        list_price: 1800 + 45 * number as i64,
        beds: 1 + (number % 3) as i32,
        baths: 1 + (number % 2) as i32,
        line: format!(
            "{} {} Apt {}",
            100 + number * 3,
            LA_STREETS[number % LA_STREETS.len()],
            1 + number % 12
        ),
    }
}

/// One page of the API's answer to `properties/v3/list`: `limit` homes from `offset`,
/// with the total the client pages up to.
pub fn la_search_page(offset: usize, limit: usize) -> Value {
    let results: Vec<Value> = (offset + 1..=(offset + limit).min(LA_HOMES))
        .map(|number| {
            let home = la_home(number);
            json!({
                "property_id": home.property_id,
                "href": format!("/rentals/details/{}", home.property_id),
                "list_price": home.list_price,
                "status": "for_rent",
                "description": {
                    "beds": home.beds,
                    "baths": home.baths,
                    "sqft": 450 + number * 10,
                    "type": "apartment",
                },
                "location": {
                    "address": {
                        "line": home.line,
                        "city": "Los Angeles",
                        "state_code": "CA",
                        "postal_code": "90004",
                    }
                },
            })
        })
        .collect();
    json!({
        "data": {
            "home_search": {
                "total": LA_HOMES,
                "count": results.len(),
                "results": results,
            }
        }
    })
}

/// `2300` -> `2,300`.
fn thousands(amount: i64) -> String {
    if amount >= 1000 {
        format!("{},{:03}", amount / 1000, amount % 1000)
    } else {
        amount.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn london_prices_cover_monthly_weekly_and_poa() {
        assert_eq!(london_home(2).price_label, "£1,650 pcm");
        assert_eq!(london_home(2).monthly_pence, Some(165_000));
        assert_eq!(london_home(1).price_label, "£425 pw");
        // 42500 pence a week * 52 / 12 = 184166.67 -> 184167
        assert_eq!(london_home(1).monthly_pence, Some(184_167));
        assert_eq!(london_home(5).price_label, "POA");
        assert_eq!(london_home(5).monthly_pence, None);
    }

    #[test]
    fn london_addresses_end_with_their_postcode() {
        let home = london_home(2);
        assert_eq!(home.address, "Flat 3, 12 Gray's Inn Road, London WC1X 8BB");
        assert_eq!(home.outward_code, "WC1X");
        assert_eq!(london_card_json(&london_home(4))["beds"], "Studio");
    }

    #[test]
    fn london_pages_hold_every_home_once() {
        let ids: Vec<u64> = (1..=london_pages() + 1)
            .flat_map(london_page)
            .map(|home| home.id)
            .collect();
        assert_eq!(ids.len(), LONDON_HOMES);
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), LONDON_HOMES);
        assert!(london_page(london_pages() + 1).is_empty());
    }

    #[test]
    fn la_pages_stop_at_the_total() {
        let first = la_search_page(0, 50);
        let second = la_search_page(50, 50);
        assert_eq!(first["data"]["home_search"]["count"], 50);
        assert_eq!(second["data"]["home_search"]["count"], LA_HOMES - 50);
        assert_eq!(second["data"]["home_search"]["total"], LA_HOMES);
        assert_eq!(
            second["data"]["home_search"]["results"][0]["property_id"],
            la_home(51).property_id
        );
    }
}
