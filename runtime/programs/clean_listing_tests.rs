//! Unit tests of `clean_listing.vrl` and its SQL twin `clean_listing.sql`, driven with
//! records shaped like what the ScrapeJobs extract from the real Rightmove, Zoopla and
//! realtor.com captures: every record is cleaned by both programs, which must agree.

use homestream_common::program::{Input, Origin, Outcome, SqlProgram, VrlProgram};
use homestream_crds::StreamTransform;
use homestream_crds::streamtransform::TransformProgram;
use serde_json::{Value, json};

const PROGRAM: &str = include_str!("clean_listing.vrl");
const QUERY: &str = include_str!("clean_listing.sql");
const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../manifests/examples/pipeline"
);

const ORIGIN: Origin<'static> = Origin {
    key: Some(b"scraped-key"),
    topic: "listings.raw",
    partition: 0,
    offset: 0,
    timestamp: None,
};

/// Cleans `record` with both programs and returns the key and value they agree on.
fn clean(record: &Value) -> (String, Value) {
    let vrl = single(run_vrl(std::slice::from_ref(record)).remove(0));
    let sql = single(run_sql(std::slice::from_ref(record)).remove(0));
    assert_eq!(vrl, sql, "VRL and SQL disagree on {record}");
    vrl
}

fn single(outcome: Outcome) -> (String, Value) {
    match outcome {
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

fn run_vrl(records: &[Value]) -> Vec<Outcome> {
    let program =
        VrlProgram::compile(PROGRAM).unwrap_or_else(|diagnostics| panic!("{diagnostics:#?}"));
    let mut runner = program.runner();
    records
        .iter()
        .map(|record| runner.run(&serde_json::to_vec(record).unwrap(), ORIGIN))
        .collect()
}

/// The SQL example's program: its query (this file's twin) and its columns.
fn sql_program() -> SqlProgram {
    let example: StreamTransform = serde_yaml::from_str(
        &std::fs::read_to_string(format!(
            "{EXAMPLES}/normalise-listings-sql.streamtransform.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let TransformProgram::Sql(sql) = example.spec.validate().unwrap().program else {
        panic!("the SQL example runs SQL")
    };
    assert_eq!(
        sql.query, QUERY,
        "sync the SQL example with clean_listing.sql"
    );
    SqlProgram::plan(&sql).unwrap_or_else(|diagnostics| panic!("{diagnostics:#?}"))
}

fn run_sql(records: &[Value]) -> Vec<Outcome> {
    let payloads: Vec<Vec<u8>> = records
        .iter()
        .map(|record| serde_json::to_vec(record).unwrap())
        .collect();
    let inputs: Vec<Input<'_>> = payloads
        .iter()
        .map(|payload| (payload.as_slice(), ORIGIN))
        .collect();
    sql_program().runner().run(&inputs)
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
    let record = json!({"price": "£1,200 pcm", "_meta": meta("https://www.zoopla.co.uk/")});
    for outcome in [
        run_vrl(std::slice::from_ref(&record)).remove(0),
        run_sql(&[record]).remove(0),
    ] {
        let Outcome::Failed(reason) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(reason.contains("record has no id"), "{reason}");
    }
}

/// Records made of every combination of the fields' awkward forms, a chunk at a time as
/// the transform runs SQL: both programs must make the same of each.
#[test]
fn both_programs_agree_on_every_combination_of_forms() {
    let ids = [
        json!("88014666"),
        json!(87_766_707),
        json!("  42 "),
        json!(null),
        json!(""),
    ];
    let prices = [
        json!("£2,300 pcm"),
        json!("FEATURED PROPERTY £3,000 pcm"),
        json!("£550 pw"),
        json!("£1,234.5 pw"),
        json!("€12,000 pa"),
        json!("$1,950.99"),
        json!("POA"),
        json!("  Offers   over £400,000 "),
        json!(2450),
        json!(1999.5),
        json!(null),
    ];
    let counts = [
        json!(2),
        json!("2"),
        json!("Studio"),
        json!("3 beds"),
        json!(7.0),
        json!(null),
        json!(-1),
        json!("none"),
    ];
    let addresses = [
        json!("Gray's Inn Road, King's Cross, London, WC1X"),
        json!("Birkenhead Street ,\\n Kings Cross WC1X"),
        json!("  Acton Street,   London N1 9GU "),
        json!("152 S Berendo St"),
        json!(""),
        json!(null),
    ];
    let pages = [
        json!({"sourceUrl": "https://www.rightmove.co.uk/property-to-rent/find.html", "job": "ns/rightmove-rentals", "scrapedAt": "2026-05-14T09:30:00Z"}),
        json!({"sourceUrl": "https://Www.Zoopla.CO.uk/to-rent/", "job": "zoopla"}),
        json!({"sourceUrl": "http://127.0.0.1:18090/p/1", "job": "ns/Demo"}),
        json!({"sourceUrl": "http://[::1]:8080/", "job": "v6"}),
        json!({"job": "Manual-Import"}),
        json!(null),
    ];
    let urls = [
        json!("/properties/1"),
        json!("https://example.com/a"),
        json!(null),
    ];
    let postcodes = [json!(null), json!(" 90004 ")];
    let mut records = Vec::new();
    let mut n = 0_usize;
    for id in &ids {
        for price in &prices {
            for address in &addresses {
                for page in &pages {
                    // The other fields rotate, so that every form meets every other
                    // often without multiplying the cases.
                    n += 1;
                    records.push(json!({
                        "id": id,
                        "url": urls[n % urls.len()],
                        "price": price,
                        "beds": counts[n % counts.len()],
                        "baths": counts[(n / 3) % counts.len()],
                        "address": address,
                        "postcode": postcodes[(n / 7) % postcodes.len()],
                        "_meta": page,
                    }));
                }
            }
        }
    }
    let shown = |outcome: Outcome| match outcome {
        Outcome::Records(records) => json!(
            records
                .into_iter()
                .map(|record| json!([
                    String::from_utf8(record.key.unwrap()).unwrap(),
                    serde_json::from_slice::<Value>(&record.value).unwrap()
                ]))
                .collect::<Vec<_>>()
        ),
        Outcome::Failed(reason) => json!({"failed": reason.contains("record has no id")}),
        Outcome::Aborted(reason) => json!({"aborted": reason}),
    };
    let vrl = run_vrl(&records);
    let sql = records.chunks(512).flat_map(run_sql).collect::<Vec<_>>();
    assert_eq!(vrl.len(), sql.len());
    let mut compared = 0;
    for ((record, vrl), sql) in records.iter().zip(vrl).zip(sql) {
        assert_eq!(shown(vrl), shown(sql), "on {record}");
        compared += 1;
    }
    assert_eq!(
        compared,
        ids.len() * prices.len() * addresses.len() * pages.len()
    );
}

#[test]
fn the_example_pipeline_runs_this_very_program() {
    let path = format!("{EXAMPLES}/normalise-listings.streamtransform.yaml");
    let example: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        example["spec"]["program"].as_str(),
        Some(PROGRAM),
        "sync the example with clean_listing.vrl"
    );
}
