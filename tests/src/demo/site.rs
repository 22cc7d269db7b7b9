//! The demo listings site, served on loopback: London rentals on results pages whose
//! cards are rendered by the page's own script (only a browser sees them) and paged
//! through `<link rel="next">`, and a Los Angeles rentals REST API in the shape of
//! realtor.com's `properties/v3/list`, paged by offset and limit and guarded by an
//! API key.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::homes;

/// The header the REST API reads its key from.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The site, bound and serving in the background of the current Tokio runtime.
pub struct DemoSite {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl DemoSite {
    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Binds `listen` (port 0 for any) and serves the site until the runtime stops;
/// the REST API answers only requests carrying `api_key`.
///
/// # Errors
/// When the address cannot be bound.
pub async fn start(listen: SocketAddr, api_key: &str) -> Result<DemoSite> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the demo site to {listen}"))?;
    let addr = listener.local_addr()?;
    let app = router(api_key.to_owned());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the demo site stopped");
        }
    });
    Ok(DemoSite { addr })
}

fn router(api_key: String) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
        .route("/to-rent/london/{page}", get(results_page))
        .route("/api/to-rent/london/{page}", get(results_data))
        .route("/properties/v3/list", post(rest_search))
        .with_state(api_key)
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn index() -> Response {
    html(format!(
        "<!doctype html><html><head><title>homestream demo homes</title></head><body>\
         <h1>homestream demo homes</h1>\
         <p><a href=\"/to-rent/london/1\">{} London rentals</a> (rendered by JavaScript, \
         {} per page).</p>\
         <p>POST /properties/v3/list with header {API_KEY_HEADER}: {} Los Angeles rentals \
         as JSON, paged by offset and limit.</p></body></html>",
        homes::LONDON_HOMES,
        homes::LONDON_PER_PAGE,
        homes::LA_HOMES,
    ))
}

/// The results page: an empty list the script fills from the JSON of the same page.
async fn results_page(Path(page): Path<usize>) -> Response {
    if page == 0 || page > homes::london_pages() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let next = if page < homes::london_pages() {
        format!(r#"<link rel="next" href="/to-rent/london/{}">"#, page + 1)
    } else {
        String::new()
    };
    html(format!(
        r#"<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>Property to rent in London, page {page}</title>
{next}
</head>
<body>
<h1>Property to rent in London</h1>
<div data-testid="results" aria-busy="true"></div>
<script>
fetch("/api/to-rent/london/{page}")
  .then((response) => response.json())
  .then((homes) => {{
    const results = document.querySelector('[data-testid="results"]');
    for (const home of homes) {{
      const card = document.createElement("div");
      card.id = "listing_" + home.id;
      card.className = "listing-card";
      card.innerHTML =
        '<a data-testid="listing-link" href="/to-rent/details/' + home.id + '">' +
        '<p data-testid="price"></p></a>' +
        '<ul><li data-testid="beds"></li><li data-testid="baths"></li></ul>' +
        "<address></address>";
      card.querySelector('[data-testid="price"]').textContent = home.price;
      card.querySelector('[data-testid="beds"]').textContent = home.beds;
      card.querySelector('[data-testid="baths"]').textContent = home.baths;
      card.querySelector("address").textContent = home.address;
      results.appendChild(card);
    }}
    results.setAttribute("aria-busy", "false");
  }});
</script>
</body>
</html>
"#
    ))
}

async fn results_data(Path(page): Path<usize>) -> Json<Value> {
    Json(Value::Array(
        homes::london_page(page)
            .iter()
            .map(homes::london_card_json)
            .collect(),
    ))
}

/// `properties/v3/list`: `{"limit": L, "offset": O, ...}` -> one page of results.
async fn rest_search(
    State(api_key): State<String>,
    headers: HeaderMap,
    Json(query): Json<Value>,
) -> Response {
    let given = headers
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok());
    if given != Some(api_key.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "missing or wrong API key"})),
        )
            .into_response();
    }
    let number = |name: &str, default: u64| query[name].as_u64().unwrap_or(default) as usize;
    let (offset, limit) = (number("offset", 0), number("limit", 50).min(200));
    Json(homes::la_search_page(offset, limit)).into_response()
}
