//! Documents without a browser: JSON-LD blocks as a list, a state object assigned in a
//! script, Next.js flight chunks, and a detail page that needs the DOM, JSON-LD and
//! flight data in one record: each read over plain HTTP with no JavaScript in the
//! ScrapeJob, and the same job in Chromium gives the same records. On the real Zoopla
//! capture, the flight job without JavaScript gives what the JavaScript job gives.

use homestream_crds::ScrapeJob;
use homestream_crds::scrapejob::source::Source;
use homestream_runtime::scrape::output::Record;
use serde_json::{Value, json};

use crate::scrape::{self, job, manifest, server};

/// The records' keys and values without `_meta` (which names the run and the time).
fn contents(records: &[Record]) -> Vec<(String, Value)> {
    records
        .iter()
        .map(|record| {
            let mut value = record.value.clone();
            value.as_object_mut().unwrap().remove("_meta");
            (record.key.clone(), value)
        })
        .collect()
}

/// The job with its HTTP source replaced by a browser loading the same URL.
fn in_browser(mut manifest: ScrapeJob) -> ScrapeJob {
    let url = manifest.spec.source.http.take().unwrap().url.to_string();
    manifest.spec.source = serde_yaml::from_str::<Source>(&format!(
        "browser: {{startUrls: ['{url}'], blockResourceTypes: [Image, Font, Media, Stylesheet]}}"
    ))
    .unwrap();
    manifest
}

/// Runs the checked-in job `name` over HTTP and in Chromium; both must give `expected`
/// with no error.
async fn http_and_browser_give(name: &str, expected: &Value) {
    let server = server::start().await;
    let manifest = manifest(name, &server.addr.to_string());
    for (mode, manifest) in [
        ("http", manifest.clone()),
        ("browser", in_browser(manifest)),
    ] {
        let (records, totals, _) = scrape::scrape(&job(&manifest)).await;
        let values: Vec<Value> = contents(&records).into_iter().map(|(_, v)| v).collect();
        assert_eq!(&Value::Array(values), expected, "{name} in {mode} mode");
        assert_eq!(
            (totals.pages_fetched, totals.errors),
            (1, 0),
            "{name} in {mode} mode"
        );
    }
}

#[tokio::test]
async fn json_ld_listings_are_picked_out_of_every_block_by_type() {
    http_and_browser_give(
        "documents-ld",
        &json!([
            {"id": "ld-101", "title": "2 bed flat, Acton Street", "price": 1800, "rooms": 2, "url": "/homes/ld-101", "totalResults": "3"},
            {"id": "ld-102", "title": "Studio, Birkenhead Street", "price": 1250, "rooms": 1, "url": "/homes/ld-102", "totalResults": "3"},
            {"id": "ld-103", "title": "3 bed house, Argyle Street", "price": 3400, "rooms": 3, "url": "/homes/ld-103", "totalResults": "3"},
        ]),
    )
    .await;
}

#[tokio::test]
async fn a_state_object_assigned_in_a_script_is_read_as_a_literal() {
    let page = json!({"area": "Kings Cross", "currency": "GBP", "postcodeDistrict": "WC1X"});
    let with_page = |item: Value| {
        let mut item = item;
        item.as_object_mut()
            .unwrap()
            .extend(page.as_object().unwrap().clone());
        item
    };
    http_and_browser_give(
        "documents-state",
        &json!([
            with_page(json!({"id": 201, "price": 2100, "frequency": "monthly", "beds": 2, "address": "Argyle Street, London WC1H", "featured": true})),
            with_page(json!({"id": 202, "price": 630, "frequency": "weekly", "beds": null, "address": "Birkenhead Street, Kings Cross WC1X", "featured": false})),
            with_page(json!({"id": 203, "price": 1450.0, "frequency": "monthly", "beds": 1, "address": "Acton Street, London WC1X", "featured": false})),
        ]),
    )
    .await;
}

#[tokio::test]
async fn next_flight_chunks_are_decoded_without_a_browser() {
    http_and_browser_give(
        "documents-flight",
        &json!([
            {"listingId": "300", "price": "£3,000 pcm", "priceUnformatted": 3000, "beds": 3, "baths": null, "address": "Gray's Inn Road, London WC1X", "totalResults": 4},
            {"listingId": "301", "price": "£2,100 pcm", "priceUnformatted": 2100, "beds": 2, "baths": 1, "address": "Argyle Street, London WC1H", "totalResults": 4},
            {"listingId": "302", "price": "£2,730 pcm", "priceUnformatted": 630, "beds": 2, "baths": null, "address": "Birkenhead Street, Kings Cross WC1X", "totalResults": 4},
            {"listingId": "303", "price": "£1,800 pcm", "priceUnformatted": 1800, "beds": null, "baths": 1, "address": "Acton Street, London WC1X", "totalResults": 4},
        ]),
    )
    .await;
}

#[tokio::test]
async fn a_detail_page_record_combines_the_dom_json_ld_and_flight_data() {
    http_and_browser_give(
        "documents-detail",
        &json!([{
            "id": "401",
            "title": "2 bed flat to rent, Caledonian Road",
            "price": 2350,
            "agent": "Caledonian Lettings",
            "postcode": "N1 9DT",
            "lat": 51.5362,
        }]),
    )
    .await;
}

#[tokio::test]
async fn zoopla_flight_without_javascript_extracts_what_the_javascript_job_does() {
    if !server::captures_or_skip(
        "zoopla_flight_without_javascript_extracts_what_the_javascript_job_does",
    ) {
        return;
    }
    let server = server::start().await;
    let addr = server.addr.to_string();
    let (javascript, _, _) = scrape::scrape(&job(&manifest("zoopla-rsc-browser", &addr))).await;
    let flight = manifest("zoopla-flight", &addr);
    let (over_http, http_totals, _) = scrape::scrape(&job(&flight)).await;
    let (in_browser, _, _) = scrape::scrape(&job(&in_browser(flight))).await;
    assert_eq!(javascript.len(), 28);
    assert_eq!(contents(&over_http), contents(&javascript));
    assert_eq!(contents(&in_browser), contents(&javascript));
    assert_eq!(http_totals.errors, 0);
}
