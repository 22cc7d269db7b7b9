//! Where a ScrapeJob fetches pages: a headless browser or plain HTTP.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::css::CssSelector;
use crate::format::duration::Duration;
use crate::format::jsonpath::JsonPath;
use crate::format::name::HeaderName;
use crate::format::pattern::Pattern;
use crate::format::string_format;
use crate::format::url::{HttpUrl, UrlTemplate};
use crate::secret::SecretKeyRef;

/// How pages are fetched: exactly one of `browser` or `http`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.browser) != has(self.http)")
    .message("exactly one of source.browser or source.http must be set"))]
pub struct Source {
    /// Load pages in headless Chromium over the DevTools Protocol: for sites that
    /// render listings with JavaScript or load them from their own APIs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserSource>,
    /// Fetch with plain HTTP: for REST APIs and static HTML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSource>,
}

string_format! {
    /// A host name, optionally with a leading `*.` for all of its subdomains.
    HostPattern,
    max_length = 253,
    rules = [(
        "self.matches('^([*][.])?[a-z0-9]([a-z0-9-]*[a-z0-9])?([.][a-z0-9]([a-z0-9-]*[a-z0-9])?)*$')",
        "must be a lower-case host name, optionally starting with *."
    )]
}

/// A headless browser session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrowserSource {
    /// Pages to load first (1 to 100 absolute http(s) URLs, no duplicates).
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub start_urls: Vec<HttpUrl>,
    /// When a loaded page is ready to extract from. Unset: the `load` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitFor>,
    /// Resource types the browser does not download, to save time and bandwidth.
    /// Unset: `Image`, `Font` and `Media`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub block_resource_types: Option<Vec<ResourceType>>,
    /// Hosts the page may load anything from; requests to every other host are
    /// blocked. Unset: only the hosts of `startUrls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_hosts: Option<Vec<HostPattern>>,
    /// Window size. Unset: 1366x900.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewport: Option<Viewport>,
    /// Network responses to keep, so that `extract` can read the JSON a page fetched
    /// for itself (`from.response`). At most 16.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub capture_responses: Option<Vec<CaptureResponse>>,
}

/// Readiness of a loaded page. All set conditions must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitFor {
    /// Wait until an element matches this CSS selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<CssSelector>,
    /// Wait until the network has been idle for 500ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_idle: Option<bool>,
    /// Give up on the page after this long (1s to 5m). Unset: 30s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Browser resource types (as the DevTools Protocol names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum ResourceType {
    /// Images.
    Image,
    /// Web fonts.
    Font,
    /// Audio and video.
    Media,
    /// CSS.
    Stylesheet,
    /// Scripts (blocking them breaks most single-page apps).
    Script,
    /// Fetch and XHR requests.
    Fetch,
    /// WebSocket connections.
    WebSocket,
    /// Anything else.
    Other,
}

/// Browser window size in CSS pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Viewport {
    /// Width, 320 to 3840.
    #[schemars(range(min = 320, max = 3840))]
    pub width: i32,
    /// Height, 240 to 2160.
    #[schemars(range(min = 240, max = 2160))]
    pub height: i32,
}

/// A network response to capture while a page loads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaptureResponse {
    /// Name that `from.response` refers to.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z][a-zA-Z0-9_-]*$"))]
    pub name: String,
    /// Regular expression the response URL must match; the last matching response
    /// of each page is kept.
    pub url_pattern: Pattern,
}

/// Plain HTTP requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.body) || (has(self.method) && self.method == 'POST')")
    .message("http.body needs method POST"))]
pub struct HttpSource {
    /// `GET` (the default) or `POST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// URL of the first request. The path and query may hold the placeholders that
    /// `pagination` fills in: `{{offset}}`, `{{limit}}`, `{{page}}`, `{{cursor}}`.
    pub url: UrlTemplate,
    /// Request headers, at most 32. A credential (`Authorization`, `Cookie`,
    /// `X-API-Key`, ...) must come from a Secret with `valueFrom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub headers: Option<Vec<Header>>,
    /// Request body for `POST` (sent as written, e.g. JSON), with the same placeholders
    /// as `url`. At most 64 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub body: Option<String>,
    /// How to request the following pages. Unset: one request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// HTTP methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum HttpMethod {
    /// `GET`
    #[serde(rename = "GET")]
    Get,
    /// `POST`
    #[serde(rename = "POST")]
    Post,
}

/// An HTTP request header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.value) != has(self.valueFrom)")
        .message("a header takes exactly one of value or valueFrom"),
    validation = Rule::new("!(self.name.lowerAscii() in ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-rapidapi-key', 'api-key']) || has(self.valueFrom)")
        .message("a credential header must take its value from a Secret (valueFrom.secretKeyRef)")
)]
pub struct Header {
    /// Header name, e.g. `Accept` or `X-RapidAPI-Key`.
    pub name: HeaderName,
    /// Literal value (not for credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub value: Option<String>,
    /// Value from a Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<HeaderValueSource>,
}

/// Where a header value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValueSource {
    /// A key of a Secret in this namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// Paging through an API: exactly one mode, and a bound on the number of pages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.offsetLimit) ? 1 : 0) + (has(self.pageNumber) ? 1 : 0) + (has(self.cursor) ? 1 : 0) + (has(self.nextLink) ? 1 : 0) == 1")
    .message("pagination takes exactly one of offsetLimit, pageNumber, cursor or nextLink"))]
pub struct Pagination {
    /// `{{offset}}` steps by `limit` from `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_limit: Option<OffsetLimit>,
    /// `{{page}}` counts up from `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_number: Option<PageNumber>,
    /// `{{cursor}}` is the value the previous response holds at `path` (empty on the
    /// first request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<ResponseValue>,
    /// The next request goes to the URL the previous response holds at `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_link: Option<ResponseValue>,
    /// Stop after this many pages, 1 to 1000, even if there are more.
    #[schemars(range(min = 1, max = 1000))]
    pub max_pages: i32,
}

/// Offset/limit paging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffsetLimit {
    /// Items per page, the value of `{{limit}}`, 1 to 1000.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: i32,
    /// First offset. Unset: 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub start: Option<i32>,
    /// Where the response holds the total number of items; paging stops there. Unset:
    /// paging stops at the first page with fewer than `limit` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_path: Option<JsonPath>,
}

/// Page-number paging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageNumber {
    /// First page number. Unset: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub start: Option<i32>,
}

/// A value read from each response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseValue {
    /// Where the JSON response holds it; paging stops when it is missing or empty.
    pub path: JsonPath,
}
