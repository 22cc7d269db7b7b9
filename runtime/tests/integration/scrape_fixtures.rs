//! The scraper against the real captures in `../shared/fixtures/real/` (served on
//! loopback, in plain HTTP and in real Chromium) and against the project's own fixture
//! site: exactly the values `INDEX.md` lists, pagination, detail pages, JavaScript
//! rendering, retries, robots.txt and the SSRF guard.

use crate::scrape;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use homestream_crds::scrapejob::validate::ValidatedSource;
use homestream_runtime::scrape::browser::BrowserPool;
use homestream_runtime::scrape::crawl::Completion;
use homestream_runtime::scrape::guard::Refused;
use homestream_runtime::scrape::http::HttpClient;
use homestream_runtime::scrape::metrics::Metrics;
use homestream_runtime::scrape::output::Record;
use homestream_runtime::scrape::page::{FetchError, FetchedPage, Fetcher, PageRequest};
use serde_json::{Value, json};

use crate::scrape::{job, manifest, server};

fn field<'a>(record: &'a Record, name: &str) -> &'a Value {
    &record.value[name]
}

fn keys(records: &[Record]) -> Vec<&str> {
    records.iter().map(|record| record.key.as_str()).collect()
}

#[tokio::test]
async fn rightmove_next_data_gives_the_25_properties() {
    if !server::captures_or_skip("rightmove_next_data_gives_the_25_properties") {
        return;
    }
    let server = server::start().await;
    let job = job(&manifest("rightmove-nextdata", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    assert_eq!(records.len(), 25);
    assert_eq!(
        (
            totals.pages_fetched,
            totals.records_published,
            totals.errors
        ),
        (1, 25, 0)
    );
    let first: Vec<Value> = records[..3]
        .iter()
        .map(|r| {
            let v = &r.value;
            json!([
                v["id"],
                v["price"],
                v["frequency"],
                v["displayPrice"],
                v["bedrooms"],
                v["bathrooms"],
                v["address"],
                v["featured"]
            ])
        })
        .collect();
    assert_eq!(
        first,
        [
            json!([
                87766707,
                3000,
                "monthly",
                "£3,000 pcm",
                2,
                1,
                "Gray's Inn Road, King's Cross, London, WC1X",
                true
            ]),
            json!([
                88014684,
                1800,
                "monthly",
                "£1,800 pcm",
                1,
                1,
                "Acton Street, London",
                false
            ]),
            json!([
                88014666,
                630,
                "weekly",
                "£2,730 pcm",
                2,
                null,
                "Birkenhead Street , Kings Cross WC1X",
                false
            ]),
        ]
    );
    assert_eq!(keys(&records[..3]), ["87766707", "88014684", "88014666"]);
    let meta = &records[0].value["_meta"];
    assert_eq!(meta["job"], "listings/rightmove-kings-cross");
    assert_eq!(meta["run"], "test-run");
    assert_eq!(
        meta["sourceUrl"],
        server.url("/real/rightmove/search_to-rent_kings-cross_nextdata_2026.html")
    );
    assert!(meta["scrapedAt"].as_str().unwrap().ends_with('Z'));
}

fn zoopla_featured_then_regular(records: &[Record]) {
    assert_eq!(records.len(), 28);
    assert_eq!(keys(&records[..3]), ["73030468", "70587622", "72830964"]);
    assert_eq!(keys(&records[3..6]), ["73093762", "73093505", "73093496"]);
}

#[tokio::test]
async fn zoopla_dom_gives_the_28_cards_over_http() {
    if !server::captures_or_skip("zoopla_dom_gives_the_28_cards_over_http") {
        return;
    }
    let server = server::start().await;
    let job = job(&manifest("zoopla-dom", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    zoopla_featured_then_regular(&records);
    let regular: Vec<Value> = records[3..6]
        .iter()
        .map(|r| json!([field(r, "price"), field(r, "beds"), field(r, "address")]))
        .collect();
    assert_eq!(
        regular,
        [
            json!([
                "£1,200 pcm",
                "2",
                "Very Near Leigh Street Area, Euston Russell Square Area WC1H"
            ]),
            json!(["£2,730 pcm", "2", "Birkenhead Street, Kings Cross WC1X"]),
            json!(["£1,800 pcm", "1", "Acton Street, London WC1X"]),
        ]
    );
    assert_eq!(
        field(&records[3], "url"),
        &json!(server.url("/to-rent/details/73093762/"))
    );
    assert_eq!(totals.errors, 0);
}

#[tokio::test]
async fn zoopla_rsc_chunks_in_chromium_give_the_28_listings_fast() {
    if !server::captures_or_skip("zoopla_rsc_chunks_in_chromium_give_the_28_listings_fast") {
        return;
    }
    let server = server::start().await;
    let job = job(&manifest("zoopla-rsc-browser", &server.addr.to_string()));
    let started = Instant::now();
    let (records, totals, _) = scrape::scrape(&job).await;
    let elapsed = started.elapsed();
    zoopla_featured_then_regular(&records);
    let regular: Vec<Value> = records[3..6]
        .iter()
        .map(|r| {
            json!([
                field(r, "price"),
                field(r, "priceUnformatted"),
                field(r, "beds"),
                field(r, "baths"),
                field(r, "address")
            ])
        })
        .collect();
    assert_eq!(
        regular,
        [
            json!([
                "£1,200 pcm",
                1200,
                2,
                2,
                "Very Near Leigh Street Area, Euston Russell Square Area WC1H"
            ]),
            json!([
                "£2,730 pcm",
                630,
                2,
                null,
                "Birkenhead Street, Kings Cross WC1X"
            ]),
            json!(["£1,800 pcm", 1800, 1, 1, "Acton Street, London WC1X"]),
        ]
    );
    assert_eq!(totals.errors, 0);
    // The page references ~20 CDN hosts; blocked, they cost nothing. The 17 s an
    // unblocked load takes offline would fail this.
    assert!(
        elapsed < Duration::from_secs(8),
        "took {elapsed:?} including the browser launch"
    );
}

#[tokio::test]
async fn realtor_api_is_paged_by_offset_and_limit() {
    if !server::captures_or_skip("realtor_api_is_paged_by_offset_and_limit") {
        return;
    }
    let server = server::start().await;
    let job = job(&manifest("realtor-api", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    // 10 results, 3 per page: 3 + 3 + 3 + 1, the short page ends the paging.
    assert_eq!(totals.pages_fetched, 4);
    assert_eq!(server.hits("/realtor/properties/v3/list"), 4);
    assert_eq!(records.len(), 10);
    let first: Vec<Value> = records[..3]
        .iter()
        .map(|r| {
            let v = &r.value;
            json!([
                v["property_id"],
                v["listing_id"],
                v["list_price"],
                v["beds"],
                v["baths"],
                v["sqft"],
                v["type"],
                format!(
                    "{}, {} {} {}",
                    v["line"].as_str().unwrap(),
                    v["city"].as_str().unwrap(),
                    v["state"].as_str().unwrap(),
                    v["postal_code"].as_str().unwrap()
                )
            ])
        })
        .collect();
    assert_eq!(
        first,
        [
            json!([
                "2661871835",
                "2964125083",
                2000000,
                9,
                7,
                5984,
                "multi_family",
                "152 S Berendo St, Los Angeles CA 90004"
            ]),
            json!([
                "1313491446",
                "2964119801",
                2495000,
                10,
                8,
                6647,
                "multi_family",
                "139 N Catalina St, Los Angeles CA 90004"
            ]),
            json!([
                "9211330065",
                "2964076801",
                799000,
                5,
                5,
                1564,
                "townhomes",
                "315 1/4 N Normandie Ave, Los Angeles CA 90004"
            ]),
        ]
    );
    let mut unique = keys(&records);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 10, "every page is a new slice");
}

#[tokio::test]
async fn graphql_price_history_is_captured_in_chromium() {
    if !server::captures_or_skip("graphql_price_history_is_captured_in_chromium") {
        return;
    }
    let server = server::start().await;
    let job = job(&manifest(
        "zoopla-graphql-browser",
        &server.addr.to_string(),
    ));
    let (records, totals, _) = scrape::scrape(&job).await;
    // A load that timed out on a busy machine is retried, and the retry runs the
    // script again: every load makes the same three calls.
    let loads = server.hits("/zoopla/details/69794180");
    assert!(loads >= 1, "{totals:?}");
    assert_eq!(
        server.hits("/graphql"),
        3 * loads,
        "each load of the page made its script's GraphQL calls"
    );
    assert_eq!(records.len(), 1, "{totals:?}");
    assert_eq!(records[0].key, "2025-08-15T18:18:36");
    assert_eq!(field(&records[0], "priceLabel"), "£270,000");
}

#[tokio::test]
async fn fixture_site_follows_next_pages_and_merges_detail_pages() {
    let server = server::start().await;
    let job = job(&manifest("site-http", &server.addr.to_string()));
    let (records, totals, completion) = scrape::scrape(&job).await;
    assert_eq!(completion, Completion::Finished);
    // 3 results pages (maxPages) of 10 homes, each with its detail page.
    assert_eq!(records.len(), 30);
    assert_eq!(totals.pages_fetched, 33);
    assert_eq!(
        server.hits("/listings/4"),
        0,
        "maxPages bounds the next-page chain"
    );
    let home = records.iter().find(|r| r.key == "12").unwrap();
    assert_eq!(
        home.value["price"],
        format!(
            "£{},{:03} pcm",
            server::home_price(12) / 1000,
            server::home_price(12) % 1000
        )
    );
    assert_eq!(home.value["beds"], "1");
    assert_eq!(home.value["sqft"], (400 + 12 * 3).to_string());
    assert_eq!(home.value["agent"], "Agent 5");
    assert_eq!(home.value["_meta"]["detailUrl"], server.url("/homes/12"));
    assert_eq!(home.value["_meta"]["sourceUrl"], server.url("/listings/2"));
}

#[tokio::test]
async fn json_items_follow_their_detail_page_by_json_path() {
    let server = server::start().await;
    let job = job(&manifest("site-json-detail", &server.addr.to_string()));
    let (records, totals, completion) = scrape::scrape(&job).await;
    assert_eq!(completion, Completion::Finished);
    // Page 2 of the API holds homes 11 to 20, each followed to /homes/ID by its href.
    assert_eq!(
        keys(&records),
        ["11", "12", "13", "14", "15", "16", "17", "18", "19", "20"]
    );
    assert_eq!((totals.pages_fetched, totals.errors), (11, 0));
    let home = records.iter().find(|r| r.key == "12").unwrap();
    assert_eq!(home.value["id"], 12);
    assert_eq!(home.value["sqft"], (400 + 12 * 3).to_string());
    assert_eq!(home.value["agent"], "Agent 5");
    assert_eq!(home.value["_meta"]["detailUrl"], server.url("/homes/12"));
    assert_eq!(
        home.value["_meta"]["sourceUrl"],
        server.url("/api/homes?page=2")
    );
    assert_eq!(server.hits("/homes/20"), 1);
}

#[tokio::test]
async fn json_items_follow_their_next_page_by_json_path() {
    let server = server::start().await;
    let job = job(&manifest(
        "site-next-data-browser",
        &server.addr.to_string(),
    ));
    let (records, totals, completion) = scrape::scrape(&job).await;
    assert_eq!(completion, Completion::Finished);
    // Three pages (maxPages) of ten homes, each page's URL read from the one before.
    let expected: Vec<String> = (1..=30).map(|id| id.to_string()).collect();
    assert_eq!(keys(&records), expected);
    assert_eq!((totals.pages_fetched, totals.errors), (3, 0));
    assert_eq!(records[29].value["id"], 30);
    assert_eq!(
        records[29].value["_meta"]["sourceUrl"],
        server.url("/next-data/3")
    );
    assert_eq!(server.hits("/next-data/4"), 0);
}

#[tokio::test]
async fn javascript_rendered_homes_need_the_browser() {
    let server = server::start().await;
    let addr = server.addr.to_string();
    let (http_records, http_totals, _) =
        scrape::scrape(&job(&manifest("site-rendered-http", &addr))).await;
    assert_eq!(
        (http_records.len(), http_totals.pages_fetched),
        (0, 1),
        "plain HTTP sees an empty list"
    );
    let (records, _, _) = scrape::scrape(&job(&manifest("site-rendered-browser", &addr))).await;
    assert_eq!(
        keys(&records),
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    );
    assert_eq!(records[0].value["url"], server.url("/homes/1"));
    assert_eq!(server.hits("/api/homes"), 1);
}

#[tokio::test]
async fn a_flaky_endpoint_is_retried_with_backoff() {
    let server = server::start().await;
    let job = job(&manifest("site-flaky", &server.addr.to_string()));
    let started = Instant::now();
    let (records, totals, _) = scrape::scrape(&job).await;
    assert_eq!(keys(&records), ["7"]);
    assert_eq!(server.hits("/flaky"), 3);
    assert_eq!(totals.errors, 0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
}

#[tokio::test]
async fn robots_txt_exclusion_is_obeyed() {
    let server = server::start().await;
    let job = job(&manifest("site-private", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    assert!(records.is_empty());
    assert_eq!((totals.pages_fetched, totals.errors), (0, 1));
    assert_eq!(server.hits("/robots.txt"), 1);
    assert_eq!(server.hits("/private/1"), 0);
}

#[tokio::test]
async fn robots_txt_applies_to_the_requests_a_page_makes_in_the_browser() {
    let server = server::start().await;
    let mut job = job(&manifest("site-rendered-robots", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    assert!(records.is_empty(), "the page's fetch was blocked");
    assert_eq!((totals.pages_fetched, totals.errors), (1, 0));
    assert_eq!(server.hits("/rendered-private/1"), 1);
    assert_eq!(server.hits("/private/api/homes"), 0);
    assert_eq!(server.hits("/robots.txt"), 1, "fetched once for the origin");
    // The same page without robots.txt: the fetch goes through and the homes appear.
    job.spec.politeness.respect_robots_txt = false;
    let (records, _, _) = scrape::scrape(&job).await;
    assert_eq!(
        keys(&records),
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    );
    assert_eq!(server.hits("/private/api/homes"), 1);
}

#[tokio::test]
async fn the_metadata_service_is_refused_before_any_connection() {
    let started = Instant::now();
    let job = job(&manifest("metadata-service", "unused"));
    let (records, totals, _) = scrape::scrape(&job).await;
    assert!(records.is_empty());
    assert_eq!((totals.pages_fetched, totals.errors), (0, 1));
    // A connection attempt to a non-routable address would take the connect timeout
    // (10s) and be retried three times; the refusal is immediate and never retried.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn loopback_is_refused_unless_allowed_even_behind_a_name() {
    let server = server::start().await;
    for host in [
        server.addr.to_string(),
        format!("localhost:{}", server.addr.port()),
    ] {
        let mut manifest = manifest("site-http", &host);
        manifest.spec.network = None;
        let (records, totals, _) = scrape::scrape(&job(&manifest)).await;
        assert!(records.is_empty(), "{host}");
        assert_eq!((totals.pages_fetched, totals.errors), (0, 1), "{host}");
    }
    // Not even robots.txt was requested: the guard stops before connecting.
    assert_eq!(server.hits("/robots.txt") + server.hits("/listings/1"), 0);
    // And the reason is the guard's, not robots.txt's, though the name is checked
    // only when robots.txt is fetched.
    let mut manifest = manifest("site-http", &format!("localhost:{}", server.addr.port()));
    manifest.spec.network = None;
    let job = job(&manifest);
    assert!(job.spec.politeness.respect_robots_txt);
    let http = HttpClient::new(&job, Arc::new(Metrics::default())).unwrap();
    let url = url::Url::parse(&format!(
        "http://localhost:{}/listings/1",
        server.addr.port()
    ))
    .unwrap();
    let error = http.admit(&url).await.unwrap_err();
    assert!(refused_as_loopback(&error), "{error:?}");
}

/// Whether `error` is the guard's refusal of a loopback address.
fn refused_as_loopback(error: &FetchError) -> bool {
    matches!(
        error,
        FetchError::Refused {
            source: Refused::Address {
                range: "loopback",
                ..
            },
            ..
        }
    )
}

/// Loads the start page of the `site-wildcard-browser` job in Chromium, its host
/// mapped to the loopback server by the egress proxy's resolver alone.
async fn load_wildcard_host(
    server: &server::Server,
    allow_private: bool,
) -> Result<FetchedPage, FetchError> {
    let host = "listings.homestream.test";
    let mut manifest = manifest(
        "site-wildcard-browser",
        &format!("{host}:{}", server.addr.port()),
    );
    if !allow_private {
        manifest.spec.network = None;
    }
    let job = job(&manifest);
    let ValidatedSource::Browser(settings) = &job.spec.source else {
        panic!("a browser job");
    };
    let http = Arc::new(HttpClient::new(&job, Arc::new(Metrics::default())).unwrap());
    let mut options = scrape::browser_options();
    options
        .hosts
        .insert(host.into(), Ipv4Addr::LOCALHOST.into());
    if !allow_private {
        // A refused page is refused before any browser starts: launching one from
        // here would fail with another error.
        options.executable = "/nonexistent/chromium".into();
    }
    let pool = BrowserPool::new(&job, settings, http, options);
    let url = url::Url::parse(&settings.start_urls[0]).unwrap();
    let page = pool.fetch(&PageRequest::get(url)).await;
    pool.close().await;
    page
}

#[tokio::test]
async fn the_browser_connects_only_through_the_guard_even_for_wildcard_hosts() {
    let server = server::start().await;
    // Chromium cannot resolve the name itself: the page loads only through the proxy.
    let page = load_wildcard_host(&server, true).await.unwrap();
    assert!(page.body.contains(r#"data-id="10""#), "{}", page.body);
    assert_eq!(server.hits("/listings/1"), 1);
    // The name resolves to loopback, which the job does not allow: no connection, and
    // no browser (robots.txt is not fetched in this job, so that is not what refuses).
    let error = load_wildcard_host(&server, false).await.unwrap_err();
    assert!(refused_as_loopback(&error), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("listings.homestream.test resolves to 127.0.0.1, a loopback address"),
        "{error}"
    );
    assert_eq!(server.hits("/listings/1"), 1, "nothing reached the server");
}

#[tokio::test]
async fn the_requests_a_page_makes_in_the_browser_wait_for_their_hosts_rate() {
    let server = server::start().await;
    let job = job(&manifest("site-paced-browser", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    assert_eq!(records.len(), 50, "{totals:?}");
    // The page's script asks for five API pages at once; at four requests per second
    // each arrives in its own slot, a quarter of a second after the one before it at
    // the earliest. (The hop from the slot through Chromium to the server varies, so a
    // late request may be followed closely by one on time: slots, not gaps, are what
    // the rate promises.)
    let mut arrivals = server.arrivals("/rendered-all/5");
    arrivals.extend(server.arrivals("/api/homes"));
    assert_eq!(arrivals.len(), 6);
    arrivals.sort();
    let since_page: Vec<Duration> = arrivals.iter().map(|at| *at - arrivals[0]).collect();
    for (slot, elapsed) in since_page.iter().enumerate() {
        // Less the page's own hop from its slot to the server, which a busy machine
        // can stretch; unpaced, all six arrive within about 100ms.
        let earliest =
            Duration::from_millis(250 * slot as u64).saturating_sub(Duration::from_millis(150));
        assert!(*elapsed >= earliest, "{since_page:?}");
    }
}
