//! How a ScrapeJob moves through a site and how hard it may press on it: following
//! links, politeness, and which addresses it may reach.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::extract::{Field, JsonDocument, NamedDocument};
use crate::format::css::CssSelector;
use crate::format::duration::Duration;
use crate::format::jsonpath::JsonPath;

/// Links to follow from each page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// The link to the next results page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<NextPage>,
    /// The link from each item to its detail page, whose fields are merged into the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail_pages: Option<DetailPages>,
}

/// A link read from a page: exactly one of `css` (an element of the DOM) or
/// `jsonPath` (a value of a JSON item).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.css) != has(self.jsonPath)")
        .message("a link takes exactly one of css or jsonPath"),
    validation = Rule::new("!has(self.jsonPath) || !has(self.attribute)")
        .message("attribute goes with css, not with jsonPath")
)]
pub struct Link {
    /// CSS selector of the link element; the first match is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub css: Option<CssSelector>,
    /// JSONPath (RFC 9535) of the URL, for `extract.items.json` only: in each item for
    /// a detail page (e.g. `$.href`), in the document the items are read from for the
    /// next page (e.g. `$.pagination.next`). The first match is used, a string resolved
    /// against the page URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPath>,
    /// Attribute of the `css` element that holds the URL. Unset: `href`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub attribute: Option<String>,
}

/// Following next-page links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextPage {
    /// The link to the next page, read on the page itself: `css` in the DOM (e.g.
    /// `link[rel="next"]`), or for `extract.items.json` also `jsonPath` in the items'
    /// document (e.g. `$.pagination.nextUrl`).
    pub link: Link,
    /// Stop after this many pages per start URL, 1 to 1000.
    #[schemars(range(min = 1, max = 1000))]
    pub max_pages: i32,
}

/// Visiting each item's detail page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.fields.all(f, !has(f.jsonPath) || has(f.document) || has(self.from))")
        .message("detail page fields take css/attribute, jsonPath with from, or document and jsonPath"),
    validation = Rule::new("self.fields.all(f, !has(f.document) || (has(self.documents) && self.documents.exists(d, d.name == f.document)))")
        .message("a detail page field's document must name one of follow.detailPages.documents")
)]
pub struct DetailPages {
    /// The link to the detail page, relative to the item: `css` for `extract.items.css`,
    /// `jsonPath` for `extract.items.json`.
    pub link: Link,
    /// The JSON document of the detail page that `jsonPath` fields without `document`
    /// read. Unset: such fields are not allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<JsonDocument>,
    /// JSON documents of the detail page, by name, 1 to 16, for fields with `document`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub documents: Option<Vec<NamedDocument>>,
    /// Fields read on the detail page (`css` relative to the page), 1 to 100; a value
    /// that is not null wins over an item field of the same name.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub fields: Vec<Field>,
    /// Visit at most this many detail pages per run, 1 to 100000.
    #[schemars(range(min = 1, max = 100000))]
    pub max_pages: i32,
}

/// Limits that keep a scrape polite to the site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Politeness {
    /// Pages fetched at the same time, 1 to 16. Unset: 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub concurrency: Option<i32>,
    /// Requests per second to one host, 0.01 to 50. Unset: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.01, max = 50.0))]
    pub requests_per_second_per_host: Option<f64>,
    /// Whether to obey the site's robots.txt for `userAgent`. Unset: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub respect_robots_txt: Option<bool>,
    /// Retries of a failed request (network error, 429 or 5xx), 0 to 10. Unset: 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<i32>,
    /// Wait between retries: exponential from `initial` up to `max`, with jitter;
    /// a `Retry-After` header wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Timeout of one request or page load, 1s to 5m. Unset: 30s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// User-Agent of every request (and the name looked up in robots.txt). Unset: the
    /// operator's default, which names homestream.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub user_agent: Option<String>,
}

/// Exponential backoff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.initial) || !has(self.max) || duration(self.initial) <= duration(self.max)")
    .message("backoff.initial must not exceed backoff.max"))]
pub struct Backoff {
    /// First wait, 100ms to 1m. Unset: 1s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<Duration>,
    /// Longest wait, 1s to 10m. Unset: 1m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Duration>,
}

/// Which network addresses the scraper may reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Allow loopback, link-local and private addresses (RFC 1918, RFC 4193), which are
    /// refused by default so that a ScrapeJob cannot reach the cloud metadata service
    /// or in-cluster services. Unset: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_addresses: Option<bool>,
}
