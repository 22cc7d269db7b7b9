//! The extraction engine: turns a fetched page into items as a ScrapeJob's `extract`
//! describes them, plus the links to follow.
//!
//! A page is read through a [`PageReader`], which parses its HTML and reads each of its
//! documents once, and only if a rule needs them. A field reads the DOM (relative to
//! the item element, or to the page), the item's JSON, or a named document. A record
//! is the page fields, then the item's fields, then its detail page's: a later value
//! that is not null wins ([`merge`]).
//!
//! A field that cannot be extracted is `null` in the item and counted in
//! [`PageItems::missing`]; only a page whose items document cannot be read is an
//! error. Documents that fields read but that cannot be read leave those fields null
//! and are reported in [`PageItems::unreadable`].

use std::cell::{OnceCell, RefCell};

use scraper::{ElementRef, Html};
use serde_json::{Map, Value};
use url::Url;

use super::document::{self, DocumentProblem};
use super::page::FetchedPage;
use homestream_crds::scrapejob::validate::{
    DETAIL_DOCUMENT, FieldValue, PageLink, ValidatedDetailPages, ValidatedDocument,
    ValidatedExtract, ValidatedField, ValidatedItems, ValidatedLink,
};

/// A document of a page that could not be read, or only in part.
#[derive(Debug, thiserror::Error)]
#[error("document {document}: {problem}")]
pub struct ExtractError {
    /// The document's name.
    pub document: String,
    /// What is wrong.
    pub problem: DocumentProblem,
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
    /// Documents that page or item fields read but that could not be read, or only in
    /// part; their fields are null. (An items document that cannot be read fails the
    /// page instead.)
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

/// What a field is read relative to.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// A CSS item: DOM fields are relative to it.
    Element(ElementRef<'a>),
    /// A JSON item (or a detail page's `from` document): item fields read it, DOM
    /// fields the page.
    Json(&'a Value),
    /// The page: DOM fields read it, item fields have nothing to read.
    Page,
}

/// A page with its HTML and documents, each parsed or read at most once.
pub struct PageReader<'p> {
    page: &'p FetchedPage,
    documents: &'p [ValidatedDocument],
    html: OnceCell<Html>,
    read: Vec<OnceCell<Option<Value>>>,
    unreadable: RefCell<Vec<ExtractError>>,
}

impl<'p> PageReader<'p> {
    /// A reader of `page` whose rules name `documents`.
    pub fn new(page: &'p FetchedPage, documents: &'p [ValidatedDocument]) -> Self {
        Self {
            page,
            documents,
            html: OnceCell::new(),
            read: documents.iter().map(|_| OnceCell::new()).collect(),
            unreadable: RefCell::new(Vec::new()),
        }
    }

    fn html(&self) -> &Html {
        self.html
            .get_or_init(|| Html::parse_document(&self.page.body))
    }

    /// The document `name`, read on first use.
    ///
    /// # Errors
    /// The first time, when it cannot be read; later uses give `Ok(None)`.
    fn document(&self, name: &str) -> Result<Option<&Value>, ExtractError> {
        // Validation checks that every name is declared.
        let Some(index) = self.documents.iter().position(|d| d.name == name) else {
            return Ok(None);
        };
        let cell = &self.read[index];
        if let Some(value) = cell.get() {
            return Ok(value.as_ref());
        }
        let error = |problem| ExtractError {
            document: name.to_owned(),
            problem,
        };
        match document::read(&self.documents[index].source, self.page, || self.html()) {
            Ok(read) => {
                self.unreadable
                    .borrow_mut()
                    .extend(read.partial.into_iter().map(error));
                Ok(cell.get_or_init(|| Some(read.value)).as_ref())
            }
            Err(problem) => {
                cell.get_or_init(|| None);
                Err(error(problem))
            }
        }
    }

    /// The document `name` for a field: one that cannot be read is reported once and
    /// gives no value.
    fn field_document(&self, name: &str) -> Option<&Value> {
        self.document(name).unwrap_or_else(|error| {
            self.unreadable.borrow_mut().push(error);
            None
        })
    }

    /// The values of `fields` in `scope`; those not found are null and noted in `missing`.
    fn fields(
        &self,
        fields: &[ValidatedField],
        scope: Scope<'_>,
        missing: &mut Vec<String>,
    ) -> Map<String, Value> {
        let base = self.page.url.as_ref();
        fields
            .iter()
            .map(|field| {
                let value = match &field.value {
                    FieldValue::Dom { css, attribute } => {
                        let scope = match scope {
                            Scope::Element(element) => element,
                            Scope::Json(_) | Scope::Page => self.html().root_element(),
                        };
                        let element = match css {
                            Some(css) => scope.select(css).next(),
                            None => Some(scope),
                        };
                        element
                            .and_then(|element| dom_value(element, attribute.as_deref(), base))
                            .and_then(|text| narrow(field, text))
                            .map(Value::String)
                    }
                    FieldValue::Item(path) => match scope {
                        Scope::Json(item) => json_value(field, path, item),
                        // Validation gives item paths to JSON items only.
                        Scope::Element(_) | Scope::Page => None,
                    },
                    FieldValue::Document { document, path } => self
                        .field_document(document)
                        .and_then(|root| json_value(field, path, root)),
                };
                let value = value.unwrap_or_else(|| {
                    missing.push(field.name.clone());
                    Value::Null
                });
                (field.name.clone(), value)
            })
            .collect()
    }

    fn into_unreadable(self) -> Vec<ExtractError> {
        self.unreadable.into_inner()
    }
}

/// Extracts the items of a results page.
///
/// # Errors
/// When the document the items are read from cannot be read.
pub fn page_items(rules: PageRules<'_>, page: &FetchedPage) -> Result<PageItems, ExtractError> {
    let extract = rules.extract;
    let reader = PageReader::new(page, &extract.documents);
    let base = page.url.as_ref();
    let mut out = PageItems::default();
    let mut items_document = None;
    match &extract.items {
        ValidatedItems::Css { selector, text } => {
            for element in reader.html().select(selector) {
                let fields =
                    reader.fields(&extract.fields, Scope::Element(element), &mut out.missing);
                let detail = match rules.detail_link {
                    Some(PageLink::Css(link)) => link_in(element, link, base),
                    // Validation gives CSS items only CSS links.
                    Some(PageLink::Json(_)) | None => None,
                };
                out.items.push(Item { fields, detail });
            }
            if out.items.is_empty() {
                out.empty_reason = Some(format!("no element matches extract.items.css {text:?}"));
            }
        }
        ValidatedItems::Json { document, path } => {
            let Some(root) = reader.document(document)? else {
                return Ok(out);
            };
            items_document = Some(root);
            for value in path.query(root).all() {
                let fields = reader.fields(&extract.fields, Scope::Json(value), &mut out.missing);
                let detail = match rules.detail_link {
                    Some(PageLink::Json(path)) => json_link(value, path, base),
                    // Validation gives JSON items only JSONPath links.
                    Some(PageLink::Css(_)) | None => None,
                };
                out.items.push(Item { fields, detail });
            }
            if out.items.is_empty() {
                out.empty_reason = Some(format!(
                    "extract.items.json.path {path} selects nothing in document {document}"
                ));
            }
        }
    }
    if !out.items.is_empty() && !extract.page_fields.is_empty() {
        let page_fields = reader.fields(&extract.page_fields, Scope::Page, &mut out.missing);
        for item in &mut out.items {
            let own = std::mem::replace(&mut item.fields, page_fields.clone());
            merge(&mut item.fields, own);
        }
    }
    out.next_page = match rules.next_page {
        Some(PageLink::Css(link)) => link_in(reader.html().root_element(), link, base),
        // Validation gives a JSONPath next link to JSON items only.
        Some(PageLink::Json(path)) => items_document.and_then(|root| json_link(root, path, base)),
        None => None,
    };
    out.unreadable = reader.into_unreadable();
    Ok(out)
}

/// The fields of a detail page, and the documents its fields could not read.
#[derive(Debug, Default)]
pub struct DetailFields {
    /// The values, null where not found.
    pub fields: Map<String, Value>,
    /// Names of the fields not found.
    pub missing: Vec<String>,
    /// Documents that could not be read, or only in part.
    pub unreadable: Vec<ExtractError>,
}

/// Extracts the fields of a detail page: from its DOM, its `from` document (fields
/// without a document) and its named documents.
///
/// # Errors
/// When `from` is set and that document cannot be read.
pub fn detail_fields(
    rules: &ValidatedDetailPages,
    page: &FetchedPage,
) -> Result<DetailFields, ExtractError> {
    let mut documents = rules.documents.clone();
    if let Some(from) = &rules.from {
        documents.push(ValidatedDocument {
            name: DETAIL_DOCUMENT.to_owned(),
            source: from.clone(),
        });
    }
    let reader = PageReader::new(page, &documents);
    let mut missing = Vec::new();
    let fields = match &rules.from {
        Some(_) => {
            let root = reader.document(DETAIL_DOCUMENT)?;
            let scope = root.map_or(Scope::Page, Scope::Json);
            reader.fields(&rules.fields, scope, &mut missing)
        }
        None => reader.fields(&rules.fields, Scope::Page, &mut missing),
    };
    Ok(DetailFields {
        fields,
        missing,
        unreadable: reader.into_unreadable(),
    })
}

/// Lays `over` onto `fields`: a value of `over` wins unless it is null and `fields`
/// has one.
pub fn merge(fields: &mut Map<String, Value>, over: Map<String, Value>) {
    for (name, value) in over {
        if value.is_null() && fields.get(&name).is_some_and(|old| !old.is_null()) {
            continue;
        }
        fields.insert(name, value);
    }
}

/// The value of a JSONPath field in `root`: one match is the value, several a list.
fn json_value(
    field: &ValidatedField,
    path: &serde_json_path::JsonPath,
    root: &Value,
) -> Option<Value> {
    let mut matches = path.query(root).all();
    let value = match matches.len() {
        0 => None,
        1 => matches.pop().cloned(),
        _ => Some(Value::Array(matches.into_iter().cloned().collect())),
    };
    match (value, &field.regex) {
        (Some(value), Some(_)) => narrow(field, scalar_text(&value)).map(Value::String),
        (value, None) => value,
        (None, Some(_)) => None,
    }
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

    /// Rules without next-page or detail links.
    fn without_links(extract: &ValidatedExtract) -> PageRules<'_> {
        PageRules {
            extract,
            next_page: None,
            detail_link: None,
        }
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
        let rules = without_links(&extract);
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
        let rules = without_links(&extract);
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
        let rules = without_links(&extract);
        assert!(matches!(
            page_items(rules, &page("<p>hi</p>")),
            Err(ExtractError {
                problem: DocumentProblem::NoScript,
                ..
            })
        ));
        let extract = extract_body();
        let rules = without_links(&extract);
        assert!(matches!(
            page_items(rules, &page("<html>")),
            Err(ExtractError {
                problem: DocumentProblem::NotJson { .. },
                ..
            })
        ));
    }

    #[test]
    fn page_fields_are_defaults_that_item_values_override_unless_null() {
        let extract = extract(
            r#"
documents: [{name: state, assignment: window.state}]
items: {css: li}
key: id
fields:
  - {name: id, attribute: data-id}
  - {name: area, attribute: data-area}
pageFields:
  - {name: area, document: state, jsonPath: $.area}
  - {name: total, css: h1, regex: '(\d+)'}
"#,
        );
        let page = page(
            r#"<h1>2 homes</h1><script>window.state = {area: 'WC1X'}</script>
            <ul><li data-id="1" data-area="N1"></li><li data-id="2"></li></ul>"#,
        );
        let rules = without_links(&extract);
        let items = page_items(rules, &page).unwrap();
        let values: Vec<Value> = items
            .items
            .iter()
            .map(|item| Value::Object(item.fields.clone()))
            .collect();
        assert_eq!(
            values,
            [
                serde_json::json!({"id": "1", "area": "N1", "total": "2"}),
                serde_json::json!({"id": "2", "area": "WC1X", "total": "2"}),
            ]
        );
        assert!(items.unreadable.is_empty());
    }

    #[test]
    fn an_unreadable_field_document_nulls_its_fields_and_is_reported_once() {
        let extract = extract(
            "documents: [{name: ld, script: 'script#ld'}]\nitems: {css: li}\nkey: id\nfields: [{name: id, attribute: data-id}, {name: price, document: ld, jsonPath: $.price}]",
        );
        let rules = without_links(&extract);
        let items = page_items(
            rules,
            &page(r#"<script id="ld">{oops</script><ul><li data-id="1"></li><li data-id="2"></li></ul>"#),
        )
        .unwrap();
        assert_eq!(items.items.len(), 2);
        assert_eq!(items.items[1].fields["price"], Value::Null);
        assert_eq!(items.missing, ["price", "price"]);
        assert_eq!(items.unreadable.len(), 1, "{:?}", items.unreadable);
        assert!(
            items.unreadable[0]
                .to_string()
                .starts_with("document ld: the script is not JSON")
        );
    }

    #[test]
    fn detail_fields_read_the_dom_their_from_document_and_named_documents() {
        let spec: homestream_crds::ScrapeJobSpec = serde_yaml::from_str(
            r#"
source: {http: {url: 'https://example.com/'}}
output: {topic: {name: t}}
extract: {items: {css: li}, key: id, fields: [{name: id, attribute: data-id}]}
follow:
  detailPages:
    link: {css: a}
    maxPages: 5
    from: {script: 'script#__NEXT_DATA__'}
    documents: [{name: flight, nextFlight: {}}]
    fields:
      - {name: price, jsonPath: $.price}
      - {name: agent, css: .agent}
      - {name: postcode, document: flight, jsonPath: $..postcode}
      - {name: id, css: .nothing}
"#,
        )
        .unwrap();
        let valid = spec.validate().unwrap();
        let detail = detail_fields(
            valid.detail_pages.as_ref().unwrap(),
            &page(
                r#"<p class="agent">Acme Lettings</p><script id="__NEXT_DATA__" type="application/json">{"price": 2350}</script>
                <script>self.__next_f.push([1,"1:{\"postcode\":\"N1 9DT\"}\n"])</script>"#,
            ),
        )
        .unwrap();
        assert_eq!(
            Value::Object(detail.fields.clone()),
            serde_json::json!({"price": 2350, "agent": "Acme Lettings", "postcode": "N1 9DT", "id": null})
        );
        let mut item = serde_json::json!({"id": "7", "price": 2000})
            .as_object()
            .unwrap()
            .clone();
        merge(&mut item, detail.fields);
        assert_eq!(
            Value::Object(item),
            serde_json::json!({"id": "7", "price": 2350, "agent": "Acme Lettings", "postcode": "N1 9DT"})
        );
    }

    fn extract_body() -> ValidatedExtract {
        extract("items: {json: {path: '$[*]'}}\nkey: id\nfields: [{name: id, jsonPath: '$.id'}]")
    }
}
