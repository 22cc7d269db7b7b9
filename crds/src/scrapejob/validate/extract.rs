//! The extraction rules: where the items are (CSS or a JSON document), each field's
//! selector, JSONPath and regex, and the record key naming one of the fields.

use crate::scrapejob::extract::{Extract, Field, JsonDocument};
use crate::validation::Problems;

/// Extraction.
#[derive(Debug, Clone)]
pub struct ValidatedExtract {
    /// Where the items are.
    pub items: ValidatedItems,
    /// Item fields.
    pub fields: Vec<ValidatedField>,
    /// Name of the key field.
    pub key: String,
}

/// Where the items are.
#[derive(Debug, Clone)]
pub enum ValidatedItems {
    /// Elements matching a selector.
    Css(scraper::Selector),
    /// Values a JSONPath selects in a document.
    Json {
        /// The document.
        from: DocumentSource,
        /// The items' path.
        path: serde_json_path::JsonPath,
    },
}

/// A JSON document of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    /// The response body.
    Body,
    /// The text of the first script matching the selector.
    Script(scraper::Selector),
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
        /// Element relative to the item; `None` is the item itself.
        css: Option<scraper::Selector>,
        /// Attribute; `None` is the text.
        attribute: Option<String>,
    },
    /// In the item's JSON.
    Json(serde_json_path::JsonPath),
}

pub(super) fn validate(extract: &Extract, problems: &mut Problems) -> Option<ValidatedExtract> {
    let items = match (&extract.items.css, &extract.items.json) {
        (Some(css), None) => problems
            .check("spec.extract.items.css", css.parse())
            .map(ValidatedItems::Css),
        (None, Some(json)) => {
            let from = document(json.from.as_ref(), "spec.extract.items.json.from", problems);
            let path = problems.check("spec.extract.items.json.path", json.path.parse());
            from.zip(path)
                .map(|(from, path)| ValidatedItems::Json { from, path })
        }
        _ => {
            problems.push(
                "spec.extract.items",
                "exactly one of css or json must be set",
            );
            None
        }
    };
    let fields = fields(&extract.fields, "spec.extract.fields", problems);
    if !extract.fields.iter().any(|field| field.name == extract.key) {
        problems.push(
            "spec.extract.key",
            format_args!("{:?} is not one of extract.fields", extract.key),
        );
    }
    Some(ValidatedExtract {
        items: items?,
        fields,
        key: extract.key.clone(),
    })
}

pub(super) fn document(
    document: Option<&JsonDocument>,
    path: &str,
    problems: &mut Problems,
) -> Option<DocumentSource> {
    let Some(document) = document else {
        return Some(DocumentSource::Body);
    };
    match (&document.script, &document.expression, &document.response) {
        (Some(script), None, None) => problems
            .check(format!("{path}.script"), script.parse())
            .map(DocumentSource::Script),
        (None, Some(expression), None) => Some(DocumentSource::Expression(expression.clone())),
        (None, None, Some(response)) => Some(DocumentSource::Response(response.clone())),
        _ => {
            problems.push(
                path,
                "exactly one of script, expression or response must be set",
            );
            None
        }
    }
}

pub(super) fn fields(fields: &[Field], base: &str, problems: &mut Problems) -> Vec<ValidatedField> {
    fields
        .iter()
        .filter_map(|field| {
            let path = format!("{base}[{}]", field.name);
            let value = if let Some(json_path) = &field.json_path {
                problems
                    .check(format!("{path}.jsonPath"), json_path.parse())
                    .map(FieldValue::Json)
            } else {
                let css = problems
                    .check_opt(format!("{path}.css"), field.css.as_ref(), |css| css.parse());
                let css_ok = field.css.is_none() || css.is_some();
                css_ok.then(|| FieldValue::Dom {
                    css,
                    attribute: field.attribute.clone(),
                })
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
