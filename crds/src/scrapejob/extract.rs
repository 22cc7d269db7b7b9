//! What a ScrapeJob takes from each page: a list of items, the fields of each item,
//! and which field is the record key.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::format::css::CssSelector;
use crate::format::jsonpath::JsonPath;
use crate::format::pattern::Pattern;

/// How records are extracted from a page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.fields.exists(f, f.name == self.key)")
        .message("extract.key must name one of extract.fields"),
    validation = Rule::new("has(self.items.css) ? self.fields.all(f, !has(f.jsonPath)) : self.fields.all(f, has(f.jsonPath))")
        .message("fields of css items take css/attribute, fields of json items take jsonPath")
)]
pub struct Extract {
    /// Where the items (listings) of a page are.
    pub items: Items,
    /// The fields of each item, 1 to 100, names unique.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub fields: Vec<Field>,
    /// Name of the field that is the record key (e.g. the listing id). Items without
    /// it are counted as errors and skipped.
    #[schemars(length(min = 1, max = 63))]
    pub key: String,
}

/// The items of a page: exactly one of `css` or `json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.css) != has(self.json)")
    .message("extract.items takes exactly one of css or json"))]
pub struct Items {
    /// Every element matching this CSS selector is an item; its fields use `css`
    /// relative to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub css: Option<CssSelector>,
    /// Every value that `path` selects in a JSON document is an item; its fields use
    /// `jsonPath` relative to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonItems>,
}

/// Items from a JSON document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JsonItems {
    /// The document. Unset: the response body (http sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<JsonDocument>,
    /// JSONPath of the items in the document, e.g.
    /// `$.props.pageProps.searchResults.properties[*]`.
    pub path: JsonPath,
}

/// A JSON document in or behind a page: exactly one of `script`, `expression` or `response`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.script) ? 1 : 0) + (has(self.expression) ? 1 : 0) + (has(self.response) ? 1 : 0) == 1")
    .message("from takes exactly one of script, expression or response"))]
pub struct JsonDocument {
    /// CSS selector of an inline script whose text is JSON, e.g.
    /// `script#__NEXT_DATA__` or `script[type="application/ld+json"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<CssSelector>,
    /// JavaScript expression evaluated in the page; its (JSON-serialisable) value is
    /// the document. Browser sources only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub expression: Option<String>,
    /// Name of a captured network response (`source.browser.captureResponses`) whose
    /// body is the document. Browser sources only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub response: Option<String>,
}

/// One field of an item: from the DOM (`css` and/or `attribute`) or from JSON
/// (`jsonPath`), optionally narrowed by `regex`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.jsonPath) != (has(self.css) || has(self.attribute))")
    .message("a field takes jsonPath, or css and/or attribute"))]
pub struct Field {
    /// Name of the field in the record.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-zA-Z_][a-zA-Z0-9_]*$"))]
    pub name: String,
    /// CSS selector relative to the item; the first match is used. Unset with
    /// `attribute`: the item element itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub css: Option<CssSelector>,
    /// Attribute to read (e.g. `href`, `id`). Unset: the element's text, with
    /// whitespace collapsed. Relative URLs in `href` and `src` are made absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub attribute: Option<String>,
    /// JSONPath relative to the item (`$` is the item). One match gives the value, several
    /// give a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPath>,
    /// Regular expression applied to the text value: the first capture group (or the
    /// whole match) becomes the value; no match makes the field absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<Pattern>,
    /// Whether an item without this field is skipped and counted as an error.
    /// Unset: false (the field is left out of the record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}
