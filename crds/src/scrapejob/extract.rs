//! What a ScrapeJob takes from each page: the JSON documents in or behind it, a list
//! of items, the fields of each item and of the page, and which field is the record key.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::css::CssSelector;
use crate::format::jsonpath::JsonPath;
use crate::format::pattern::Pattern;
use crate::format::script::ScriptName;

/// How records are extracted from a page.
///
/// A record is made of the page's `pageFields`, then the item's `fields`, then (when
/// followed) its detail page's fields: a later value that is not null wins over an
/// earlier one of the same name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.fields.exists(f, f.name == self.key)")
        .message("extract.key must name one of extract.fields"),
    validation = Rule::new("!has(self.items.css) || self.fields.all(f, !has(f.jsonPath) || has(f.document))")
        .message("fields of css items read JSON only from a named document: jsonPath there takes document"),
    validation = Rule::new("!has(self.pageFields) || self.pageFields.all(f, !has(f.jsonPath) || has(f.document))")
        .message("pageFields read JSON only from a named document: jsonPath there takes document"),
    validation = Rule::new("self.fields.all(f, !has(f.document) || (has(self.documents) && self.documents.exists(d, d.name == f.document))) && (!has(self.pageFields) || self.pageFields.all(f, !has(f.document) || (has(self.documents) && self.documents.exists(d, d.name == f.document)))) && (!has(self.items.json) || !has(self.items.json.document) || (has(self.documents) && self.documents.exists(d, d.name == self.items.json.document)))")
        .message("a field's or the items' document must name one of extract.documents")
)]
pub struct Extract {
    /// JSON documents read from each page, by name, 1 to 16: fields and items refer
    /// to them with `document`. Each is read once per page, only if something reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub documents: Option<Vec<NamedDocument>>,
    /// Where the items (listings) of a page are.
    pub items: Items,
    /// The fields of each item, 1 to 100, names unique.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub fields: Vec<Field>,
    /// Fields read once per page (e.g. the total result count, the search area) and
    /// merged into every item of the page, 1 to 50. They read the page's DOM (`css`,
    /// `attribute`) or a named document (`document` and `jsonPath`). An item field of
    /// the same name wins unless its value is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub page_fields: Option<Vec<Field>>,
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
    /// Every element matching this CSS selector is an item; its `css` fields are
    /// relative to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub css: Option<CssSelector>,
    /// Every value that `path` selects in a JSON document is an item; its `jsonPath`
    /// fields (without `document`) are relative to it, its `css` fields to the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonItems>,
}

/// Items from a JSON document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.from) && has(self.document))")
    .message("extract.items.json takes from or document, not both"))]
pub struct JsonItems {
    /// The name of one of `extract.documents` the items are in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub document: Option<String>,
    /// The document, written here rather than named. Unset with `document` unset:
    /// the response body (http sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<JsonDocument>,
    /// JSONPath of the items in the document, e.g.
    /// `$.props.pageProps.searchResults.properties[*]`, or to pick one of several
    /// JSON-LD scripts `$[?@['@type'] == 'RealEstateListing']`.
    pub path: JsonPath,
}

/// A named JSON document of a page (the rule of [`JsonDocument`] comes with its
/// flattened fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedDocument {
    /// The name fields and items refer to it by.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-zA-Z_][a-zA-Z0-9_]*$"))]
    pub name: String,
    /// Where the document is.
    #[serde(flatten)]
    pub source: JsonDocument,
}

/// A JSON document in or behind a page: exactly one of `script`, `scripts`,
/// `assignment`, `call`, `nextFlight`, `expression` or `response`. All but the last two
/// are read from the page's HTML, in http and browser sources alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.script), has(self.scripts), has(self.assignment), has(self.call), has(self.nextFlight), has(self.expression), has(self.response)].exists_one(x, x)")
    .message("a document takes exactly one of script, scripts, assignment, call, nextFlight, expression or response"))]
pub struct JsonDocument {
    /// CSS selector of an inline script whose text is JSON; the first match, e.g.
    /// `script#__NEXT_DATA__`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<CssSelector>,
    /// CSS selector of inline scripts whose text is JSON; every match, as a list in
    /// page order, e.g. `script[type="application/ld+json"]` (pick one with a JSONPath
    /// filter). A script that is not JSON is left out and counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scripts: Option<CssSelector>,
    /// A JavaScript name assigned a literal in an inline script: the value of the
    /// first `NAME = {...}` (also `var|let|const NAME = ...` when NAME is one
    /// identifier, or `window.`/`self.`/`globalThis.` and one identifier). The value is
    /// parsed as a JavaScript literal (objects, arrays, strings, numbers, `true`,
    /// `!0`, `undefined` as null, `JSON.parse("...")`), not evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment: Option<ScriptName>,
    /// A JavaScript function called with a literal in inline scripts, e.g.
    /// `dataLayer.push`: the first argument of every call, as a list in page order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<ScriptName>,
    /// The Next.js App Router's flight data (`self.__next_f.push([1, "..."])` chunks):
    /// joined and decoded into a list of the JSON values its rows carry, so that e.g.
    /// `$..regularListingsFormatted[*]` finds the listings. Write `nextFlight: {}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_flight: Option<NextFlight>,
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

/// The Next.js flight data of a page; it has no settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NextFlight {}

/// One field: from the DOM (`css` and/or `attribute`), from the item (`jsonPath`, JSON
/// items) or from a named document (`document` and `jsonPath`), optionally narrowed
/// by `regex`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.jsonPath) != (has(self.css) || has(self.attribute))")
        .message("a field takes jsonPath, or css and/or attribute"),
    validation = Rule::new("!has(self.document) || has(self.jsonPath)")
        .message("a field's document goes with jsonPath")
)]
pub struct Field {
    /// Name of the field in the record.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-zA-Z_][a-zA-Z0-9_]*$"))]
    pub name: String,
    /// CSS selector, relative to the item for `extract.items.css` and to the page
    /// otherwise; the first match is used. Unset with `attribute`: the item element itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub css: Option<CssSelector>,
    /// Attribute to read (e.g. `href`, `id`). Unset: the element's text, with
    /// whitespace collapsed. Relative URLs in `href` and `src` are made absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub attribute: Option<String>,
    /// The name of one of the documents (`extract.documents`, or for detail pages
    /// `follow.detailPages.documents`) that `jsonPath` reads from its root. Unset:
    /// `jsonPath` reads the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub document: Option<String>,
    /// JSONPath relative to the item, or to the root of `document` (`$` is either).
    /// One match gives the value, several give a list.
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
