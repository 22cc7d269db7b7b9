//! Unit tests of `clean_listing.vrl`, driven with records shaped like what the
//! ScrapeJobs extract from the real Rightmove, Zoopla and realtor.com captures.

use homestream_common::program::{Origin, Outcome, Program};
use serde_json::{Value, json};

const PROGRAM: &str = include_str!("clean_listing.vrl");

const ORIGIN: Origin<'static> = Origin {
    key: Some(b"scraped-key"),
    topic: "listings.raw",
    partition: 0,
    offset: 0,
    timestamp: None,
};

fn clean(record: &Value) -> (String, Value) {
    let program =
        Program::compile(PROGRAM).unwrap_or_else(|diagnostics| panic!("{diagnostics:#?}"));
    match program
        .runner()
        .run(&serde_json::to_vec(record).unwrap(), ORIGIN)
    {
        Outcome::Records(mut records) if records.len() == 1 => {
            let record = records.remove(0);
            (
                String::from_utf8(record.key.unwrap()).unwrap(),
                serde_json::from_slice(&record.value).unwrap(),
            )
        }
        other => panic!("expected one record, got {other:?}"),
    }
}

fn meta(url: &str) -> Value {
    json!({"sourceUrl": url, "job": "some-job", "run": "some-job-29012345", "scrapedAt": "2026-05-14T09:30:00Z"})
}

#[test]
fn rightmove_featured_monthly_listing() {
    let (key, cleaned) = clean(&json!({
        "id": 87766707,
        "url": "/properties/87766707#/?channel=RES_LET",
        "price": "FEATURED PROPERTY £3,000 pcm",
        "beds": 2,
        "baths": 1,
        "address": "Gray's Inn Road, King's Cross, London, WC1X",
        "_meta": meta("https://www.rightmove.co.uk/property-to-rent/find.html?locationIdentifier=STATION%5E5162"),
    }));
    assert_eq!(key, "rightmove:87766707");
    assert_eq!(
        cleaned,
        json!({
            "listing_key": "rightmove:87766707",
            "source": "rightmove",
            "listing_id": "87766707",
            "url": "https://www.rightmove.co.uk/properties/87766707#/?channel=RES_LET",
            "currency": "GBP",
            "price_label": "£3,000 pcm",
            "monthly_price_minor": 300000,
            "beds": 2,
            "baths": 1,
            "address": "Gray's Inn Road, King's Cross, London, WC1X",
            "postcode": null,
            "outward_code": "WC1X",
            "scraped_at": "2026-05-14T09:30:00Z",
        })
    );
}

#[test]
fn weekly_prices_become_monthly() {
    // Rightmove 88014666 is let at £630 a week: 630 * 52 / 12 = £2,730 a month.
    let (_, cleaned) = clean(&json!({
        "id": "88014666", "price": "£630 pw", "beds": 2, "baths": null,
        "address": "Birkenhead Street , Kings Cross WC1X",
        "_meta": meta("https://www.rightmove.co.uk/property-to-rent/find.html"),
    }));
    assert_eq!(cleaned["monthly_price_minor"], 273_000);
    assert_eq!(cleaned["baths"], Value::Null);
    assert_eq!(cleaned["address"], "Birkenhead Street, Kings Cross WC1X");
    assert_eq!(cleaned["outward_code"], "WC1X");
    let (_, cleaned) =
        clean(&json!({"id": 1, "price": "£550 pw", "_meta": meta("https://www.zoopla.co.uk/")}));
    assert_eq!(
        cleaned["monthly_price_minor"], 238_333,
        "55000 * 52 / 12 rounded"
    );
}

#[test]
fn zoopla_text_fields_become_integers() {
    let (key, cleaned) = clean(&json!({
        "id": "73093505",
        "url": "/to-rent/details/73093505/",
        "price": "£2,730 pcm",
        "beds": "2",
        "baths": null,
        "address": "Birkenhead Street,\\n Kings Cross WC1X",
        "_meta": meta("https://www.zoopla.co.uk/to-rent/property/station/tube/kings-cross-st-pancras/"),
    }));
    assert_eq!(key, "zoopla:73093505");
    assert_eq!(
        cleaned["url"],
        "https://www.zoopla.co.uk/to-rent/details/73093505/"
    );
    assert_eq!(cleaned["monthly_price_minor"], 273_000);
    assert_eq!(cleaned["beds"], 2);
    assert_eq!(cleaned["address"], "Birkenhead Street, Kings Cross WC1X");
}

#[test]
fn studios_poa_and_full_postcodes() {
    let (_, cleaned) = clean(&json!({
        "id": "73093496", "price": "POA", "beds": "Studio", "baths": "1 bath",
        "address": "  Acton Street,   London N1 9GU ",
        "_meta": meta("https://www.zoopla.co.uk/"),
    }));
    assert_eq!(cleaned["price_label"], "POA");
    assert_eq!(cleaned["monthly_price_minor"], Value::Null);
    assert_eq!(cleaned["currency"], Value::Null);
    assert_eq!(cleaned["beds"], 0);
    assert_eq!(cleaned["baths"], 1);
    assert_eq!(cleaned["address"], "Acton Street, London N1 9GU");
    assert_eq!(cleaned["outward_code"], "N1");
    assert_eq!(cleaned["postcode"], "N1 9GU");
}

#[test]
fn realtor_api_numbers_are_dollars() {
    let (key, cleaned) = clean(&json!({
        "id": "2661871835", "url": "https://www.realtor.com/realestateandhomes-detail/152-S-Berendo-St_Los-Angeles_CA_90004",
        "price": 2450, "beds": 9, "baths": 7.0, "address": "152 S Berendo St", "postcode": "90004",
        "_meta": meta("https://realty-in-us.p.rapidapi.com/properties/v3/list"),
    }));
    assert_eq!(key, "realty-in-us:2661871835");
    assert_eq!(cleaned["currency"], "USD");
    assert_eq!(cleaned["monthly_price_minor"], 245_000);
    assert_eq!(
        (cleaned["beds"].clone(), cleaned["baths"].clone()),
        (json!(9), json!(7))
    );
    assert_eq!(cleaned["postcode"], "90004");
    assert_eq!(cleaned["outward_code"], Value::Null);
}

#[test]
fn source_falls_back_to_the_job_name() {
    let (key, _) = clean(&json!({"id": 5, "_meta": {"job": "Manual-Import"}}));
    assert_eq!(key, "manual-import:5");
    for host in ["127.0.0.1:18090", "localhost:8080", "[::1]:8080"] {
        let record =
            json!({"id": 5, "_meta": {"url": format!("http://{host}/p/1"), "job": "ns/demo"}});
        assert_eq!(clean(&record).0, "demo:5", "{host}");
    }
}

#[test]
fn a_record_without_an_id_fails_with_the_reason() {
    let program = Program::compile(PROGRAM).unwrap();
    let record = serde_json::to_vec(
        &json!({"price": "£1,200 pcm", "_meta": meta("https://www.zoopla.co.uk/")}),
    )
    .unwrap();
    let Outcome::Failed(reason) = program.runner().run(&record, ORIGIN) else {
        panic!()
    };
    assert!(reason.contains("record has no id"), "{reason}");
}

#[test]
fn the_example_pipeline_runs_this_very_program() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/examples/pipeline/normalise-listings.streamtransform.yaml"
    );
    let example: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        example["spec"]["program"].as_str(),
        Some(PROGRAM),
        "sync the example with clean_listing.vrl"
    );
}
