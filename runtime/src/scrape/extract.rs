//! The extraction engine: turns a fetched page into items as a ScrapeJob's `extract`
//! describes them (CSS over the DOM, or JSONPath over a JSON document in or behind the
//! page), plus the links to follow.
//!
//! A field that cannot be extracted is `null` in the item and counted in
//! [`PageItems::missing`]; only a page whose item document is absent or not JSON is an
//! error, and an item without its key or a required field is skipped and counted.

use scraper::{ElementRef, Html};
use serde_json::{Map, Value};
use url::Url;

use super::page::FetchedPage;
use homestream_crds::scrapejob::validate::{
    DocumentSource, FieldValue, PageLink, ValidatedExtract, ValidatedField, ValidatedItems,
    ValidatedLink,
};

/// A page's document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// No element matches the script selector.
    #[error("no script matches {selector}")]
    NoScript {
        /// The selector.
        selector: String,
    },
    /// The browser did not return the expression's value.
    #[error("the page gave no value for the expression")]
    NoExpression,
    /// No response matching the capture was seen while the page loaded.
    #[error("no response was captured as {name:?}")]
    NoResponse {
        /// The capture name.
        name: String,
    },
    /// The document is not JSON.
    #[error("the {what} is not JSON: {source}")]
    NotJson {
        /// Which document.
        what: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// One extracted item before it becomes a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Field values (`null` when not found).
    pub fields: Map<String, Value>,
    /// The item's detail page, if the job follows them and the link was found.
    pub detail: Option<Url>,
}

/// What one page yields.
#[derive(Debug, Default)]
pub struct PageItems {
    /// The items, in page order.
    pub items: Vec<Item>,
    /// The next results page (`follow.nextPage`).
    pub next_page: Option<Url>,
    /// Names of the fields that could not be extracted, once per item and field.
    pub missing: Vec<String>,
    /// Why the page yielded no item (set only when `items` is empty), for the log.
    pub empty_reason: Option<String>,
    /// Documents that page or item fields read but that could not be read; their
    /// fields are null. (A missing items document fails the page instead.)
    pub unreadable: Vec<ExtractError>,
}

/// What a page's items and links are read with: the job's `extract` and `follow` parts.
#[derive(Debug, Clone, Copy)]
pub struct PageRules<'a> {
    /// Items and fields.
    pub extract: &'a ValidatedExtract,
    /// The next-page link (in the DOM, or in the JSON items' document).
    pub next_page: Option<&'a PageLink>,
    /// The detail-page link of each item.
    pub detail_link: Option<&'a PageLink>,
}

/// The DOM of a page, parsed only if some rule reads it.
struct Dom<'p> {
    page: &'p FetchedPage,
    html: Option<Html>,
}

impl<'p> Dom<'p> {
    fn new(page: &'p FetchedPage) -> Self {
        Self { page, html: None }
    }

    fn html(&mut self) -> &Html {
        self.html
            .get_or_insert_with(|| Html::parse_document(&self.page.body))
    }
}

/// Extracts the items of a results page.
///
/// # Errors
/// When the document the items are read from is missing or not JSON.
pub fn page_items(rules: PageRules<'_>, page: &FetchedPage) -> Result<PageItems, ExtractError> {
    let mut dom = Dom::new(page);
    let mut out = PageItems::default();
    let base = page.url.as_ref();
    let mut items_document = None;
    match &rules.extract.items {
        ValidatedItems::Css(selector) => {
            let html = dom.html();
            for element in html.select(selector) {
                let fields = dom_fields(&rules.extract.fields, element, base, &mut out.missing);
                let detail = match rules.detail_link {
                    Some(PageLink::Css(link)) => link_in(element, link, base),
                    // Validation gives CSS items only CSS links.
                    Some(PageLink::Json(_)) | None => None,
                };
                out.items.push(Item { fields, detail });
            }
        }
        ValidatedItems::Json { from, path } => {
            let document = items_document.insert(document(from, &mut dom)?);
            for value in path.query(document).all() {
                let fields = json_fields(&rules.extract.fields, value, &mut out.missing);
                let detail = match rules.detail_link {
                    Some(PageLink::Json(path)) => json_link(value, path, base),
                    // Validation gives JSON items only JSONPath links.
                    Some(PageLink::Css(_)) | None => None,
                };
                out.items.push(Item { fields, detail });
            }
        }
    }
    if out.items.is_empty() {
        out.empty_reason = Some(match &rules.extract.items {
            ValidatedItems::Css(selector) => {
                format!("no element matches extract.items.css {selector:?}")
            }
            ValidatedItems::Json { path, .. } => {
                format!("extract.items.json.path {path} selects nothing in the document")
            }
        });
    }
    out.next_page = match rules.next_page {
        Some(PageLink::Css(link)) => link_in(dom.html().root_element(), link, base),
        // Validation gives a JSONPath next link to JSON items only.
        Some(PageLink::Json(path)) => items_document
            .as_ref()
            .and_then(|document| json_link(document, path, base)),
        None => None,
    };
    Ok(out)
}

/// Extracts the fields of a detail page, read from its DOM or from `from`.
///
/// # Errors
/// When `from` is set and that document is missing or not JSON.
pub fn detail_fields(
    from: Option<&DocumentSource>,
    fields: &[ValidatedField],
    page: &FetchedPage,
    missing: &mut Vec<String>,
) -> Result<Map<String, Value>, ExtractError> {
    let mut dom = Dom::new(page);
    match from {
        Some(from) => {
            let document = document(from, &mut dom)?;
            Ok(json_fields(fields, &document, missing))
        }
        None => {
            let html = dom.html();
            Ok(dom_fields(
                fields,
                html.root_element(),
                page.url.as_ref(),
                missing,
            ))
        }
    }
}

fn document(source: &DocumentSource, dom: &mut Dom<'_>) -> Result<Value, ExtractError> {
    let page = dom.page;
    let parse = |what, text: &str| {
        serde_json::from_str(text).map_err(|source| ExtractError::NotJson { what, source })
    };
    match source {
        DocumentSource::Body => parse("response body", &page.body),
        DocumentSource::Script(selector) => {
            let html = dom.html();
            let script = html
                .select(selector)
                .next()
                .ok_or_else(|| ExtractError::NoScript {
                    selector: format!("{selector:?}"),
                })?;
            parse("script", &script.text().collect::<String>())
        }
        DocumentSource::Expression(expression) => page
            .expressions
            .get(expression)
            .cloned()
            .ok_or(ExtractError::NoExpression),
        DocumentSource::Response(name) => {
            let body = page
                .responses
                .get(name)
                .ok_or_else(|| ExtractError::NoResponse { name: name.clone() })?;
            parse("captured response", body)
        }
    }
}

fn dom_fields(
    fields: &[ValidatedField],
    item: ElementRef<'_>,
    base: Option<&Url>,
    missing: &mut Vec<String>,
) -> Map<String, Value> {
    fields
        .iter()
        .map(|field| {
            let value = match &field.value {
                FieldValue::Dom { css, attribute } => {
                    let element = match css {
                        Some(css) => item.select(css).next(),
                        None => Some(item),
                    };
                    element
                        .and_then(|element| dom_value(element, attribute.as_deref(), base))
                        .and_then(|text| narrow(field, text))
                        .map(Value::String)
                }
                // Validation keeps JSONPath fields off CSS items; such a field has no value here.
                FieldValue::Json(_) => None,
            };
            (
                field.name.clone(),
                value.unwrap_or_else(|| note_missing(field, missing)),
            )
        })
        .collect()
}

fn json_fields(
    fields: &[ValidatedField],
    item: &Value,
    missing: &mut Vec<String>,
) -> Map<String, Value> {
    fields
        .iter()
        .map(|field| {
            let value = match &field.value {
                FieldValue::Json(path) => {
                    let mut matches = path.query(item).all();
                    let value = match matches.len() {
                        0 => None,
                        1 => matches.pop().cloned(),
                        _ => Some(Value::Array(matches.into_iter().cloned().collect())),
                    };
                    match (value, &field.regex) {
                        (Some(value), Some(_)) => {
                            narrow(field, scalar_text(&value)).map(Value::String)
                        }
                        (value, None) => value,
                        (None, Some(_)) => None,
                    }
                }
                FieldValue::Dom { .. } => None,
            };
            (
                field.name.clone(),
                value.unwrap_or_else(|| note_missing(field, missing)),
            )
        })
        .collect()
}

fn note_missing(field: &ValidatedField, missing: &mut Vec<String>) -> Value {
    missing.push(field.name.clone());
    Value::Null
}

/// The text (whitespace collapsed) or attribute of an element; `href` and `src` are
/// made absolute.
fn dom_value(
    element: ElementRef<'_>,
    attribute: Option<&str>,
    base: Option<&Url>,
) -> Option<String> {
    match attribute {
        None => Some(collapse_whitespace(element.text())),
        Some(name) => {
            let value = element.value().attr(name)?;
            if matches!(name, "href" | "src")
                && let Some(absolute) = base.and_then(|base| base.join(value).ok())
            {
                return Some(absolute.into());
            }
            Some(value.to_owned())
        }
    }
}

fn collapse_whitespace<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for word in parts.flat_map(str::split_whitespace) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Applies the field's regex: the first capture group, or the whole match.
fn narrow(field: &ValidatedField, text: String) -> Option<String> {
    let Some(regex) = &field.regex else {
        return Some(text);
    };
    let captures = regex.captures(&text)?;
    captures
        .get(1)
        .or_else(|| captures.get(0))
        .map(|m| m.as_str().to_owned())
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn link_in(scope: ElementRef<'_>, link: &ValidatedLink, base: Option<&Url>) -> Option<Url> {
    let element = std::iter::once(scope)
        .filter(|e| link.css.matches(e))
        .chain(scope.select(&link.css))
        .next()?;
    resolve(element.value().attr(&link.attribute)?, base)
}

/// The URL at `path` in a JSON value (the first match, a string), resolved against `base`.
fn json_link(item: &Value, path: &serde_json_path::JsonPath, base: Option<&Url>) -> Option<Url> {
    resolve(path.query(item).all().into_iter().next()?.as_str()?, base)
}

fn resolve(link: &str, base: Option<&Url>) -> Option<Url> {
    let link = link.trim();
    match base {
        Some(base) => base.join(link).ok(),
        None => Url::parse(link).ok(),
    }
}

/// The record key of an item: its key field as text; `None` when it is absent, null or empty.
pub fn key_of(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key)? {
        Value::Null => None,
        value => Some(scalar_text(value)).filter(|text| !text.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use homestream_crds::runtime::ResourceIdentity;

    use super::*;
    use crate::scrape::job::Job;

    fn extract(yaml: &str) -> ValidatedExtract {
        let spec = format!(
            "source: {{http: {{url: 'https://example.com/'}}}}\noutput: {{topic: {{name: t}}}}\nextract:\n{}",
            yaml.lines()
                .map(|line| format!("  {line}\n"))
                .collect::<String>()
        );
        let spec: homestream_crds::ScrapeJobSpec = serde_yaml::from_str(&spec).unwrap();
        let resource = ResourceIdentity {
            kind: "ScrapeJob".into(),
            namespace: "ns".into(),
            name: "job".into(),
            generation: 1,
        };
        Job::new(&spec, &resource, "run".into(), |_| None)
            .unwrap()
            .spec
            .extract
    }

    fn page(body: &str) -> FetchedPage {
        FetchedPage {
            url: Some(Url::parse("https://example.com/list/").unwrap()),
            body: body.to_owned(),
            ..FetchedPage::default()
        }
    }

    #[test]
    fn css_fields_text_attribute_regex_and_missing() {
        let extract = extract(
            r#"
items: {css: "li.home"}
key: id
fields:
  - {name: id, attribute: data-id}
  - {name: url, css: a, attribute: href}
  - {name: beds, css: span, regex: '(\d+) beds?'}
  - {name: title, css: h2}
"#,
        );
        let page = page(
            r#"<ul><li class="home" data-id="1"><a href="/h/1">x</a><h2>  Nice
            flat </h2><span>2 beds</span></li><li class="home" data-id="2"><span>studio</span></li></ul>"#,
        );
        let rules = PageRules {
            extract: &extract,
            next_page: None,
            detail_link: None,
        };
        let items = page_items(rules, &page).unwrap();
        assert_eq!(items.items.len(), 2);
        assert_eq!(
            Value::Object(items.items[0].fields.clone()),
            serde_json::json!({"id": "1", "url": "https://example.com/h/1", "beds": "2", "title": "Nice flat"})
        );
        assert_eq!(
            Value::Object(items.items[1].fields.clone()),
            serde_json::json!({"id": "2", "url": null, "beds": null, "title": null})
        );
        assert_eq!(items.missing, ["url", "beds", "title"]);
    }

    #[test]
    fn json_fields_from_a_script_with_filters_and_lists() {
        let extract = extract(
            r#"
items: {json: {from: {script: "script#data"}, path: "$.homes[*]"}}
key: id
fields:
  - {name: id, jsonPath: "$.id"}
  - {name: beds, jsonPath: "$.features[?@.icon == 'bed'].n"}
  - {name: tags, jsonPath: "$.tags[*]"}
  - {name: postcode, jsonPath: "$.address", regex: '([A-Z]{1,2}\d+[A-Z]?)$'}
"#,
        );
        let page = page(
            r#"<script id="data" type="application/json">{"homes": [
              {"id": 7, "features": [{"icon": "bath", "n": 1}, {"icon": "bed", "n": 3}], "tags": ["a", "b"], "address": "Acton Street, London WC1X"},
              {"id": 8, "features": [], "tags": [], "address": "nowhere"}]}</script>"#,
        );
        let rules = PageRules {
            extract: &extract,
            next_page: None,
            detail_link: None,
        };
        let items = page_items(rules, &page).unwrap();
        assert_eq!(
            Value::Object(items.items[0].fields.clone()),
            serde_json::json!({"id": 7, "beds": 3, "tags": ["a", "b"], "postcode": "WC1X"})
        );
        assert_eq!(
            Value::Object(items.items[1].fields.clone()),
            serde_json::json!({"id": 8, "beds": null, "tags": null, "postcode": null})
        );
        assert_eq!(key_of(&items.items[0].fields, "id").as_deref(), Some("7"));
    }

    #[test]
    fn a_missing_document_is_an_error_not_a_panic() {
        let extract = extract(
            "items: {json: {from: {script: 'script#none'}, path: '$[*]'}}\nkey: id\nfields: [{name: id, jsonPath: '$.id'}]",
        );
        let rules = PageRules {
            extract: &extract,
            next_page: None,
            detail_link: None,
        };
        assert!(matches!(
            page_items(rules, &page("<p>hi</p>")),
            Err(ExtractError::NoScript { .. })
        ));
        let extract = extract_body();
        let rules = PageRules {
            extract: &extract,
            next_page: None,
            detail_link: None,
        };
        assert!(matches!(
            page_items(rules, &page("<html>")),
            Err(ExtractError::NotJson { .. })
        ));
    }

    fn extract_body() -> ValidatedExtract {
        extract("items: {json: {path: '$[*]'}}\nkey: id\nfields: [{name: id, jsonPath: '$.id'}]")
    }
}
