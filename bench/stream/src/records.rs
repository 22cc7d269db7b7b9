//! The benchmark's records: listings shaped like those the realtor.com REST ScrapeJob
//! publishes, generated from their number alone (so every process of a run, and every
//! run, makes the same record `n`), with the gaps real listings have (no price, no
//! beds, no size) so that the cleaning program takes its other branches too.

use anyhow::{Result, bail};
use homestream_common::program::{Origin, Outcome, VrlRunner};
use serde_json::{Value, json};

const STATUSES: [&str; 3] = ["for_sale", "sold", "ready_to_build"];
const PLACES: [(&str, &str); 6] = [
    ("Adjuntas", "Puerto Rico"),
    ("Austin", "Texas"),
    ("Boise", "Idaho"),
    ("Dayton", "Ohio"),
    ("Fresno", "California"),
    ("Salem", "Oregon"),
];

/// Record `n` as the realtor REST ScrapeJob would publish it.
pub fn listing(n: usize) -> Value {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let (city, state) = PLACES[n % PLACES.len()];
    let price = maybe(&mut rng, |rng| json!(rng.u32(50_000..2_000_000)));
    let beds = maybe(&mut rng, |rng| json!(rng.u8(1..7)));
    let baths = maybe(&mut rng, |rng| json!(rng.u8(1..5)));
    let sqft = maybe(&mut rng, |rng| json!(rng.u16(400..6_000)));
    let street = rng.u32(1_000_000..2_000_000);
    let zip = rng.u32(601..99_950);
    json!({
        "id": format!("{}{n:07}", rng.u32(10_000..110_000)),
        "url": format!("/realestateandhomes-detail/{street}_{}_{n}", city.replace(' ', "-")),
        "price": price,
        "beds": beds,
        "baths": baths,
        "sqft": sqft,
        "status": STATUSES[n % STATUSES.len()],
        "address": format!(" {street} Street ,  {city}, {state}"),
        "city": city,
        "postcode": format!("{zip:0>5}"),
        "_meta": {"sourceUrl": "https://www.realtor.com/realestateandhomes-search/", "job": "realtor-rentals", "run": "realtor-rentals-1", "scrapedAt": "2026-05-14T09:30:00Z"},
    })
}

/// A value, or (about one time in twenty, as in the portal's own data) none.
fn maybe(rng: &mut fastrand::Rng, value: impl FnOnce(&mut fastrand::Rng) -> Value) -> Value {
    if rng.u8(..20) == 0 {
        Value::Null
    } else {
        value(rng)
    }
}

/// Record `n`'s Kafka key and payload, as the ScrapeJob publishes it.
///
/// # Errors
/// Never in practice: encoding a JSON value.
pub fn raw(n: usize) -> Result<(String, Vec<u8>)> {
    Ok((format!("raw-{n}"), serde_json::to_vec(&listing(n))?))
}

/// Record `n` as the transform writes it: the cleaning program's output and key.
///
/// # Errors
/// When the program does not make exactly one record of it.
pub fn cleaned(runner: &mut VrlRunner<'_>, n: usize) -> Result<(String, Vec<u8>)> {
    let (key, payload) = raw(n)?;
    let origin = Origin {
        key: Some(key.as_bytes()),
        topic: "bench-in",
        partition: 0,
        offset: i64::try_from(n)?,
        timestamp: None,
    };
    match runner.run(&payload, origin) {
        Outcome::Records(mut records) if records.len() == 1 => {
            let output = records.remove(0);
            Ok((
                String::from_utf8(output.key.unwrap_or_default())?,
                output.value,
            ))
        }
        other => bail!("the cleaning program did not clean record {n}: {other:?}"),
    }
}
