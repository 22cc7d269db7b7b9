//! The extraction rules: the page's documents, where the items are (CSS or a JSON
//! document), each field's source (DOM, item or document), JSONPath and regex, and the
//! record key naming one of the fields.

use crate::scrapejob::extract::{Extract, Field, JsonDocument, NamedDocument};
use crate::validation::Problems;

/// The name of the document written inline as `extract.items.json.from` (or the
/// response body when unset); not a valid user name, so it never clashes with one.
pub const ITEMS_DOCUMENT: &str = "extract.items.json.from";
/// The name of the document written inline as `follow.detailPages.from`.
pub const DETAIL_DOCUMENT: &str = "follow.detailPages.from";

/// Extraction.
#[derive(Debug, Clone)]
pub struct ValidatedExtract {
    /// The documents fields and items read, by name (an inline `from` included).
    pub documents: Vec<ValidatedDocument>,
    /// Where the items are.
    pub items: ValidatedItems,
    /// Item fields.
    pub fields: Vec<ValidatedField>,
    /// Fields read once per page and merged into its items.
    pub page_fields: Vec<ValidatedField>,
    /// Name of the key field.
    pub key: String,
}

/// Where the items are.
#[derive(Debug, Clone)]
pub enum ValidatedItems {
    /// Elements matching a selector.
    Css {
        /// The selector.
        selector: scraper::Selector,
        /// Its text, for messages.
        text: String,
    },
    /// Values a JSONPath selects in a document.
    Json {
        /// The document's name, one of [`ValidatedExtract::documents`].
        document: String,
        /// The items' path.
        path: serde_json_path::JsonPath,
    },
}

/// A document of a page, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedDocument {
    /// The name it is referred to by.
    pub name: String,
    /// Where it is.
    pub source: DocumentSource,
}

/// Where a JSON document of a page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    /// The response body.
    Body,
    /// The text of the first script matching the selector.
    Script(scraper::Selector),
    /// The texts of every script matching the selector, as a list.
    Scripts(scraper::Selector),
    /// The literal first assigned to a JavaScript name in an inline script.
    Assignment(Vec<String>),
    /// The first argument of every call of a JavaScript function, as a list.
    Call(Vec<String>),
    /// The Next.js flight data, decoded.
    NextFlight,
    /// A JavaScript expression's value.
    Expression(String),
    /// A captured response, by name.
    Response(String),
}

/// A field.
#[derive(Debug, Clone)]
pub struct ValidatedField {
    /// Record field name.
    pub name: String,
    /// Where the value is.
    pub value: FieldValue,
    /// Narrowing regex.
    pub regex: Option<regex::Regex>,
    /// Whether items without it are skipped.
    pub required: bool,
}

/// Where a field's value is.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// In the DOM.
    Dom {
        /// Element relative to the scope (the item element or the page); `None` is the
        /// scope itself.
        css: Option<scraper::Selector>,
        /// Attribute; `None` is the text.
        attribute: Option<String>,
    },
    /// In the item's JSON.
    Item(serde_json_path::JsonPath),
    /// In a named document of the page, from its root.
    Document {
        /// The document's name.
        document: String,
        /// The path in it.
        path: serde_json_path::JsonPath,
    },
}

impl ValidatedExtract {
    /// The document named `name`.
    pub fn document(&self, name: &str) -> Option<&ValidatedDocument> {
        self.documents.iter().find(|document| document.name == name)
    }
}

pub(super) fn validate(extract: &Extract, problems: &mut Problems) -> Option<ValidatedExtract> {
    let mut documents = named_documents(
        extract.documents.as_deref(),
        "spec.extract.documents",
        problems,
    );
    let items = match (&extract.items.css, &extract.items.json) {
        (Some(css), None) => {
            problems
                .check("spec.extract.items.css", css.parse())
                .map(|selector| ValidatedItems::Css {
                    selector,
                    text: css.to_string(),
                })
        }
        (None, Some(json)) => {
            let document = match (&json.document, &json.from) {
                (Some(name), None) => Some(name.clone()),
                (None, from) => document(from.as_ref(), "spec.extract.items.json.from", problems)
                    .map(|source| {
                        documents.push(ValidatedDocument {
                            name: ITEMS_DOCUMENT.to_owned(),
                            source,
                        });
                        ITEMS_DOCUMENT.to_owned()
                    }),
                (Some(_), Some(_)) => {
                    problems.push(
                        "spec.extract.items.json",
                        "takes from or document, not both",
                    );
                    None
                }
            };
            let path = problems.check("spec.extract.items.json.path", json.path.parse());
            document
                .zip(path)
                .map(|(document, path)| ValidatedItems::Json { document, path })
        }
        _ => {
            problems.push(
                "spec.extract.items",
                "exactly one of css or json must be set",
            );
            None
        }
    };
    let item_json = matches!(items, Some(ValidatedItems::Json { .. }));
    let item_fields = fields(&extract.fields, "spec.extract.fields", item_json, problems);
    let page_fields = fields(
        extract.page_fields.as_deref().unwrap_or_default(),
        "spec.extract.pageFields",
        false,
        problems,
    );
    if !extract.fields.iter().any(|field| field.name == extract.key) {
        problems.push(
            "spec.extract.key",
            format_args!("{:?} is not one of extract.fields", extract.key),
        );
    }
    let validated = ValidatedExtract {
        documents,
        items: items?,
        fields: item_fields,
        page_fields,
        key: extract.key.clone(),
    };
    check_references(&validated, problems);
    Some(validated)
}

/// Every document a field or the items name is declared.
fn check_references(extract: &ValidatedExtract, problems: &mut Problems) {
    if let ValidatedItems::Json { document, .. } = &extract.items {
        check_declared(
            &extract.documents,
            document,
            "spec.extract.items.json.document",
            problems,
        );
    }
    for (base, fields) in [
        ("spec.extract.fields", &extract.fields),
        ("spec.extract.pageFields", &extract.page_fields),
    ] {
        check_field_documents(&extract.documents, fields, base, problems);
    }
}

pub(super) fn check_field_documents(
    documents: &[ValidatedDocument],
    fields: &[ValidatedField],
    base: &str,
    problems: &mut Problems,
) {
    for field in fields {
        if let FieldValue::Document { document, .. } = &field.value {
            let path = format!("{base}[{}].document", field.name);
            check_declared(documents, document, &path, problems);
        }
    }
}

fn check_declared(
    documents: &[ValidatedDocument],
    name: &str,
    path: &str,
    problems: &mut Problems,
) {
    if !documents.iter().any(|document| document.name == name) {
        problems.push(path, format_args!("{name:?} is not one of the documents"));
    }
}

pub(super) fn named_documents(
    declared: Option<&[NamedDocument]>,
    base: &str,
    problems: &mut Problems,
) -> Vec<ValidatedDocument> {
    declared
        .unwrap_or_default()
        .iter()
        .filter_map(|named| {
            let path = format!("{base}[{}]", named.name);
            let source = document(Some(&named.source), &path, problems)?;
            Some(ValidatedDocument {
                name: named.name.clone(),
                source,
            })
        })
        .collect()
}

pub(super) fn document(
    document: Option<&JsonDocument>,
    path: &str,
    problems: &mut Problems,
) -> Option<DocumentSource> {
    let Some(document) = document else {
        return Some(DocumentSource::Body);
    };
    let JsonDocument {
        script,
        scripts,
        assignment,
        call,
        next_flight,
        expression,
        response,
    } = document;
    let set = [
        script.is_some(),
        scripts.is_some(),
        assignment.is_some(),
        call.is_some(),
        next_flight.is_some(),
        expression.is_some(),
        response.is_some(),
    ];
    if set.into_iter().filter(|set| *set).count() != 1 {
        problems.push(
            path,
            "exactly one of script, scripts, assignment, call, nextFlight, expression or response must be set",
        );
        return None;
    }
    if let Some(script) = script {
        problems
            .check(format!("{path}.script"), script.parse())
            .map(DocumentSource::Script)
    } else if let Some(scripts) = scripts {
        problems
            .check(format!("{path}.scripts"), scripts.parse())
            .map(DocumentSource::Scripts)
    } else if let Some(name) = assignment {
        problems
            .check(format!("{path}.assignment"), name.parse())
            .map(DocumentSource::Assignment)
    } else if let Some(name) = call {
        problems
            .check(format!("{path}.call"), name.parse())
            .map(DocumentSource::Call)
    } else if next_flight.is_some() {
        Some(DocumentSource::NextFlight)
    } else if let Some(expression) = expression {
        Some(DocumentSource::Expression(expression.clone()))
    } else {
        response.clone().map(DocumentSource::Response)
    }
}

/// The fields under `base`; `item_json` says whether a `jsonPath` without `document`
/// has a JSON item to read.
pub(super) fn fields(
    fields: &[Field],
    base: &str,
    item_json: bool,
    problems: &mut Problems,
) -> Vec<ValidatedField> {
    fields
        .iter()
        .filter_map(|field| {
            let path = format!("{base}[{}]", field.name);
            let value = match (&field.json_path, &field.document) {
                (Some(json_path), document) => {
                    let parsed = problems.check(format!("{path}.jsonPath"), json_path.parse());
                    match document {
                        Some(document) => parsed.map(|path| FieldValue::Document {
                            document: document.clone(),
                            path,
                        }),
                        None if item_json => parsed.map(FieldValue::Item),
                        None => {
                            problems.push(
                                format!("{path}.jsonPath"),
                                "there is no JSON item here: name a document to read",
                            );
                            None
                        }
                    }
                }
                (None, Some(_)) => {
                    problems.push(format!("{path}.document"), "goes with jsonPath");
                    None
                }
                (None, None) => {
                    let css =
                        problems.check_opt(format!("{path}.css"), field.css.as_ref(), |css| {
                            css.parse()
                        });
                    let css_ok = field.css.is_none() || css.is_some();
                    css_ok.then(|| FieldValue::Dom {
                        css,
                        attribute: field.attribute.clone(),
                    })
                }
            };
            let regex =
                problems.check_opt(format!("{path}.regex"), field.regex.as_ref(), |regex| {
                    regex.parse()
                });
            let regex_ok = field.regex.is_none() || regex.is_some();
            Some(ValidatedField {
                name: field.name.clone(),
                value: value.filter(|_| regex_ok)?,
                regex,
                required: field.required.unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrapejob::ScrapeJobSpec;

    fn spec(extract: &str) -> ScrapeJobSpec {
        serde_yaml::from_str(&format!(
            "source: {{http: {{url: 'https://example.com/'}}}}\noutput: {{topic: {{name: t}}}}\nextract: {extract}"
        ))
        .unwrap()
    }

    #[test]
    fn documents_are_named_and_an_inline_from_gets_a_name_of_its_own() {
        let valid = spec(
            "{documents: [{name: ld, scripts: 'script[type=\"application/ld+json\"]'}, {name: state, assignment: window.__STATE__}, {name: flight, nextFlight: {}}],
              items: {json: {from: {call: dataLayer.push}, path: '$[*]'}},
              key: id,
              fields: [{name: id, jsonPath: $.id}, {name: agent, css: .agent}, {name: price, document: ld, jsonPath: $..price}],
              pageFields: [{name: total, document: flight, jsonPath: $..totalResults}, {name: area, css: h1}]}",
        )
        .validate()
        .unwrap();
        let sources: Vec<(&str, &DocumentSource)> = valid
            .extract
            .documents
            .iter()
            .map(|document| (document.name.as_str(), &document.source))
            .collect();
        assert!(matches!(
            sources[..],
            [
                ("ld", DocumentSource::Scripts(_)),
                ("state", DocumentSource::Assignment(_)),
                ("flight", DocumentSource::NextFlight),
                (ITEMS_DOCUMENT, DocumentSource::Call(_)),
            ]
        ));
        assert!(
            matches!(&valid.extract.items, ValidatedItems::Json { document, .. } if document == ITEMS_DOCUMENT)
        );
        assert!(matches!(
            valid
                .extract
                .fields
                .iter()
                .map(|f| &f.value)
                .collect::<Vec<_>>()[..],
            [
                FieldValue::Item(_),
                FieldValue::Dom { .. },
                FieldValue::Document { .. }
            ]
        ));
        assert_eq!(valid.extract.page_fields.len(), 2);
    }

    #[test]
    fn every_document_named_must_be_declared_and_json_needs_something_to_read() {
        for (extract, path) in [
            (
                "{items: {css: li}, key: id, fields: [{name: id, css: a}, {name: p, document: nope, jsonPath: $.p}]}",
                "spec.extract.fields[p].document",
            ),
            (
                "{items: {json: {document: nope, path: '$[*]'}}, key: id, fields: [{name: id, jsonPath: $.id}]}",
                "spec.extract.items.json.document",
            ),
            (
                "{items: {css: li}, key: id, fields: [{name: id, jsonPath: $.id}]}",
                "spec.extract.fields[id].jsonPath",
            ),
            (
                "{items: {css: li}, key: id, fields: [{name: id, css: a}], pageFields: [{name: total, jsonPath: $.total}]}",
                "spec.extract.pageFields[total].jsonPath",
            ),
            (
                "{documents: [{name: s, assignment: \"window['x']\"}], items: {css: li}, key: id, fields: [{name: id, css: a}]}",
                "spec.extract.documents[s].assignment",
            ),
        ] {
            let error = spec(extract).validate().unwrap_err().to_string();
            assert!(error.contains(path), "{extract}: {error}");
        }
    }
}
