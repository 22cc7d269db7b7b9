//! A loopback HTTP server for the scraper's tests and benchmark: the project's own
//! fixture site (`tests/integration/scrape/site/`), the real captures under
//! `../shared/fixtures/real/` (read at run time, never copied), and replays of the
//! captured APIs (realtor.com's paged REST list, Zoopla's GraphQL).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Listing pages of the fixture site; with [`PER_PAGE`] homes each, 50 pages hold
/// 500 detail pages, enough for the benchmark's 500+ pages.
pub const LISTING_PAGES: usize = 50;
/// Homes per listing page.
pub const PER_PAGE: usize = 10;

/// The running server.
pub struct Server {
    /// Its address (127.0.0.1 and an ephemeral port).
    pub addr: SocketAddr,
    arrivals: Arrivals,
    gate: Arc<Gate>,
}

/// Path (without query) and arrival time of every request, in arrival order.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// Holds the first request for one path until the test releases it, so that a test
/// can act while a page is certainly loading.
#[derive(Default)]
struct Gate {
    path: Mutex<Option<String>>,
    arrived: Notify,
    release: Notify,
}

impl Server {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Holds the next request for `path` (without query) until [`Server::release`].
    pub fn hold_next(&self, path: &str) {
        *self.gate.path.lock().unwrap() = Some(path.to_owned());
    }

    /// Waits until the held request has arrived.
    pub async fn held(&self) {
        self.gate.arrived.notified().await;
    }

    /// Lets the held request be answered.
    pub fn release(&self) {
        self.gate.release.notify_one();
    }

    /// How many requests `path` (without query) received.
    pub fn hits(&self, path: &str) -> usize {
        self.arrivals(path).len()
    }

    /// When the requests for `path` (without query) arrived, in order.
    pub fn arrivals(&self, path: &str) -> Vec<Instant> {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|(arrived, _)| arrived == path)
            .map(|(_, at)| *at)
            .collect()
    }
}

#[derive(Clone)]
struct AppState {
    arrivals: Arrivals,
    gate: Arc<Gate>,
    flaky: Arc<AtomicUsize>,
}

/// The repository's root (`runtime/..`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real captures (internal: never copied into the repository): where
/// `HOMESTREAM_REAL_CAPTURES` says, else where the team's checkouts keep them, beside
/// the repository.
pub fn real_fixtures() -> PathBuf {
    std::env::var_os("HOMESTREAM_REAL_CAPTURES").map_or_else(
        || repo_root().join("../shared/fixtures/real"),
        PathBuf::from,
    )
}

/// Whether the real captures are there for `test`; when they are not, says on the
/// terminal that `test` is skipped and why.
pub fn captures_or_skip(test: &str) -> bool {
    let captures = real_fixtures();
    if captures.is_dir() {
        return true;
    }
    // Straight to the terminal: the harness hides what a passing test prints.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: it needs the real captures at {}, which are not part of the repository",
        captures.display()
    );
    false
}

fn site_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/scrape/site")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// Starts the server on an ephemeral loopback port.
pub async fn start() -> Server {
    let arrivals = Arrivals::default();
    let gate = Arc::new(Gate::default());
    let state = AppState {
        arrivals: arrivals.clone(),
        gate: gate.clone(),
        flaky: Arc::new(AtomicUsize::new(0)),
    };
    let app = Router::new()
        .route("/robots.txt", get(|| async { site_file("robots.txt") }))
        .route("/listings/{page}", get(listing))
        .route("/homes/{id}", get(home))
        .route("/rendered/{page}", get(rendered))
        .route("/rendered-all/{pages}", get(rendered_all))
        .route("/api/homes", get(api_homes))
        .route("/next-data/{page}", get(next_data))
        .route("/private/api/homes", get(api_homes))
        .route("/rendered-private/{page}", get(rendered_private))
        .route("/flaky", get(flaky))
        .route("/empty", get(|| async { html(site_file("empty.html")) }))
        .route(
            "/private/{page}",
            get(|| async { html(site_file("private.html")) }),
        )
        .route("/documents/{page}", get(documents))
        .route("/real/{*path}", get(real))
        .route("/realtor/properties/v3/list", post(realtor))
        .route(
            "/zoopla/details/{id}",
            get(|| async { html(site_file("graphql.html")) }),
        )
        .route("/graphql", post(graphql))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        arrivals,
        gate,
    }
}

async fn count(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state
        .arrivals
        .lock()
        .unwrap()
        .push((request.uri().path().to_owned(), Instant::now()));
    let held = {
        let mut path = state.gate.path.lock().unwrap();
        let hold = path.as_deref() == Some(request.uri().path());
        if hold {
            path.take();
        }
        hold
    };
    if held {
        state.gate.arrived.notify_one();
        state.gate.release.notified().await;
    }
    next.run(request).await
}

/// A page of `site/documents/`: data in JSON-LD, script state and flight chunks.
async fn documents(Path(page): Path<String>) -> Response {
    html(site_file(&format!("documents/{page}")))
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The fixture site's homes: deterministic, so tests know every value.
pub fn home_price(id: usize) -> usize {
    1000 + (id * 37) % 2000
}

fn home_card(id: usize) -> String {
    site_file("card.html")
        .replace("{{id}}", &id.to_string())
        .replace("{{price}}", &format_price(home_price(id)))
        .replace("{{beds}}", &(1 + id % 4).to_string())
}

fn format_price(price: usize) -> String {
    format!("£{},{:03} pcm", price / 1000, price % 1000)
}

async fn listing(Path(page): Path<usize>) -> Response {
    if page == 0 || page > LISTING_PAGES {
        return StatusCode::NOT_FOUND.into_response();
    }
    let cards: String = (1..=PER_PAGE)
        .map(|i| home_card((page - 1) * PER_PAGE + i))
        .collect();
    let next = if page < LISTING_PAGES {
        format!(r#"<a rel="next" href="/listings/{}">Next</a>"#, page + 1)
    } else {
        String::new()
    };
    html(
        site_file("listing.html")
            .replace("{{page}}", &page.to_string())
            .replace("{{cards}}", &cards)
            .replace("{{next}}", &next),
    )
}

async fn home(Path(id): Path<usize>) -> Response {
    html(
        site_file("home.html")
            .replace("{{id}}", &id.to_string())
            .replace("{{sqft}}", &(400 + id * 3).to_string())
            .replace("{{agent}}", &format!("Agent {}", id % 7)),
    )
}

async fn rendered(Path(page): Path<usize>) -> Response {
    html(site_file("rendered.html").replace("{{page}}", &page.to_string()))
}

/// A page whose script fetches the first `pages` pages of the API at once.
async fn rendered_all(Path(pages): Path<usize>) -> Response {
    html(site_file("rendered-all.html").replace("{{pages}}", &pages.to_string()))
}

/// The rendered page, its script fetching the homes from under `/private/`, which
/// robots.txt disallows.
async fn rendered_private(Path(page): Path<usize>) -> Response {
    html(
        site_file("rendered.html")
            .replace("{{page}}", &page.to_string())
            .replace("/api/homes", "/private/api/homes"),
    )
}

/// The value of `name` in the query of `uri` (axum is built without its query extractor).
fn query(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The data the rendered page's script fetches; `href` is each home's detail page.
/// Past the last page, no homes.
async fn api_homes(uri: Uri) -> Response {
    let page: usize = query(&uri, "page")
        .and_then(|page| page.parse().ok())
        .unwrap_or(1);
    let homes = if page > LISTING_PAGES {
        Vec::new()
    } else {
        homes(page)
    };
    json(serde_json::json!({"homes": homes}).to_string())
}

/// The homes of results page `page` as JSON.
fn homes(page: usize) -> Vec<Value> {
    (1..=PER_PAGE)
        .map(|i| (page.max(1) - 1) * PER_PAGE + i)
        .map(|id| serde_json::json!({"id": id, "price": format_price(home_price(id)), "beds": 1 + id % 4, "href": format!("/homes/{id}")}))
        .collect()
}

/// A results page whose homes and next page's URL are only in its page data.
async fn next_data(Path(page): Path<usize>) -> Response {
    let next = (page < LISTING_PAGES).then(|| format!("/next-data/{}", page + 1));
    let data = serde_json::json!({"props": {"homes": homes(page), "pagination": {"next": next}}});
    html(site_file("next-data.html").replace("{{data}}", &data.to_string()))
}

/// Fails twice with 503 (asking to retry after 1s the first time), then answers.
async fn flaky(State(state): State<AppState>) -> Response {
    match state.flaky.fetch_add(1, Ordering::SeqCst) {
        0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "busy",
        )
            .into_response(),
        1 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        _ => html(
            site_file("listing.html")
                .replace("{{page}}", "flaky")
                .replace("{{cards}}", &home_card(7))
                .replace("{{next}}", ""),
        ),
    }
}

async fn real(Path(path): Path<String>) -> Response {
    if path.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match std::fs::read(real_fixtures().join(&path)) {
        Ok(bytes) if path.ends_with(".json") => json(String::from_utf8(bytes).unwrap()),
        Ok(bytes) => html(String::from_utf8(bytes).unwrap()),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Replays the captured realtor.com list: the results from `offset`, `limit` of them.
async fn realtor(headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("x-rapidapi-key").and_then(|v| v.to_str().ok()) != Some("test-key") {
        return (StatusCode::UNAUTHORIZED, "missing API key").into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let offset = request["offset"].as_u64().unwrap_or(0) as usize;
    let limit = request["limit"].as_u64().unwrap_or(10) as usize;
    let text = std::fs::read_to_string(
        real_fixtures().join("realtor/rapidapi_realty-in-us_v3_list_90004.json"),
    )
    .unwrap();
    let mut document: Value = serde_json::from_str(&text).unwrap();
    let search = &mut document["data"]["home_search"];
    let results: Vec<Value> = search["results"]
        .as_array()
        .unwrap()
        .iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    search["count"] = results.len().into();
    search["results"] = Value::Array(results);
    json(document.to_string())
}

/// Replays the captured Zoopla GraphQL answer whose data holds the operation's field.
async fn graphql(uri: Uri) -> Response {
    let field = match query(&uri, "op").unwrap_or_default().as_str() {
        "UserStatus" => "user",
        "ListingDetails" => "listingDetails",
        "PropertyHistory" => "property",
        "PointsOfInterest" => "pointsOfInterestV2",
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let text =
        std::fs::read_to_string(real_fixtures().join("zoopla/graphql_intercepted_69794180.json"))
            .unwrap();
    let capture: Value = serde_json::from_str(&text).unwrap();
    let response = capture["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["data"]["data"].get(field).is_some());
    match response {
        Some(response) => json(response["data"].to_string()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
