//! Reading one JSON document of a fetched page from where the job says it is: the
//! response body, the text of one or every matching script, a literal assigned or
//! passed in the inline scripts, the Next.js flight data, or (browser) an expression's
//! value or a captured response.
//!
//! A document is either read or not ([`DocumentProblem`]); a document that is read may
//! still come with problems that left part of it out (a JSON-LD script that is not
//! JSON among several, a call whose argument is not a literal, a flight row cut short).

use std::sync::LazyLock;

use scraper::{Html, Selector};
use serde_json::Value;

use super::page::FetchedPage;
use super::script::{self, ScriptError, flight};
use homestream_crds::scrapejob::validate::DocumentSource;

/// Inline scripts that may be JavaScript: no `src`; JSON data blocks are left out by
/// their type. Parsed once, not on every page.
static INLINE_SCRIPTS: LazyLock<Selector> = LazyLock::new(|| {
    Selector::parse("script:not([src])").expect("a constant selector that parses")
});

/// Why a document, or part of one, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentProblem {
    /// No element matches the script selector.
    #[error("no script matches the selector")]
    NoScript,
    /// The browser did not return the expression's value.
    #[error("the page gave no value for the expression")]
    NoExpression,
    /// No response matching the capture was seen while the page loaded.
    #[error("no response was captured as {name:?}")]
    NoResponse {
        /// The capture name.
        name: String,
    },
    /// A text that should be JSON is not.
    #[error("the {what} is not JSON: {source}")]
    NotJson {
        /// Which text, e.g. `response body` or `script 2 of 3`.
        what: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// An assignment or call was not found or is not a literal.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The flight data is missing or a row is broken.
    #[error(transparent)]
    Flight(#[from] flight::FlightError),
}

/// A document that was read, and the problems that left parts of it out.
#[derive(Debug)]
pub struct Read {
    /// The document.
    pub value: Value,
    /// What was left out, and why.
    pub partial: Vec<DocumentProblem>,
}

impl Read {
    fn whole(value: Value) -> Self {
        Self {
            value,
            partial: Vec::new(),
        }
    }
}

/// Reads the document `source` of `page`; `html` parses the page when a script is read.
///
/// # Errors
/// When the document is not in the page or is not JSON.
pub fn read<'h>(
    source: &DocumentSource,
    page: &FetchedPage,
    html: impl FnOnce() -> &'h Html,
) -> Result<Read, DocumentProblem> {
    match source {
        DocumentSource::Body => parse("response body", &page.body).map(Read::whole),
        DocumentSource::Script(selector) => {
            let script = html()
                .select(selector)
                .next()
                .ok_or(DocumentProblem::NoScript)?;
            parse("script", &text(script)).map(Read::whole)
        }
        DocumentSource::Scripts(selector) => scripts(html(), selector),
        DocumentSource::Assignment(name) => Ok(Read::whole(script::assignment(
            inline_scripts(html()).iter().map(String::as_str),
            name,
        )?)),
        DocumentSource::Call(name) => {
            let (values, errors) =
                script::calls(inline_scripts(html()).iter().map(String::as_str), name)?;
            Ok(Read {
                value: Value::Array(values),
                partial: errors.into_iter().map(DocumentProblem::from).collect(),
            })
        }
        DocumentSource::NextFlight => next_flight(html()),
        DocumentSource::Expression(expression) => page
            .expressions
            .get(expression)
            .cloned()
            .map(Read::whole)
            .ok_or(DocumentProblem::NoExpression),
        DocumentSource::Response(name) => {
            let body = page
                .responses
                .get(name)
                .ok_or_else(|| DocumentProblem::NoResponse { name: name.clone() })?;
            parse("captured response", body).map(Read::whole)
        }
    }
}

fn parse(what: &str, text: &str) -> Result<Value, DocumentProblem> {
    serde_json::from_str(text).map_err(|source| DocumentProblem::NotJson {
        what: what.to_owned(),
        source,
    })
}

fn text(element: scraper::ElementRef<'_>) -> String {
    element.text().collect()
}

/// Every matching script's JSON, in page order; those that are not JSON are left out.
fn scripts(html: &Html, selector: &Selector) -> Result<Read, DocumentProblem> {
    let texts: Vec<String> = html.select(selector).map(text).collect();
    if texts.is_empty() {
        return Err(DocumentProblem::NoScript);
    }
    let count = texts.len();
    let mut values = Vec::new();
    let mut partial = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        match parse(&format!("script {} of {count}", index + 1), text) {
            Ok(value) => values.push(value),
            Err(problem) => partial.push(problem),
        }
    }
    if values.is_empty()
        && let Some(problem) = partial.pop()
    {
        return Err(problem);
    }
    Ok(Read {
        value: Value::Array(values),
        partial,
    })
}

/// The text of the page's inline scripts that are not JSON data blocks.
fn inline_scripts(html: &Html) -> Vec<String> {
    html.select(&INLINE_SCRIPTS)
        .filter(|script| {
            !script
                .value()
                .attr("type")
                .is_some_and(|kind| kind.to_ascii_lowercase().contains("json"))
        })
        .map(text)
        .collect()
}

fn next_flight(html: &Html) -> Result<Read, DocumentProblem> {
    let name = flight::CHUNKS.map(str::to_owned);
    let chunks = match script::calls(inline_scripts(html).iter().map(String::as_str), &name) {
        Ok((chunks, _)) => chunks,
        Err(ScriptError::NotFound { .. }) => return Err(flight::FlightError::NoChunks.into()),
        Err(error) => return Err(error.into()),
    };
    let text = flight::join_chunks(&chunks)?;
    let (values, errors) = flight::decode(&text);
    Ok(Read {
        value: Value::Array(values),
        partial: errors.into_iter().map(DocumentProblem::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read_html(source: &DocumentSource, body: &str) -> Result<Read, DocumentProblem> {
        let html = Html::parse_document(body);
        let page = FetchedPage {
            body: body.to_owned(),
            ..FetchedPage::default()
        };
        read(source, &page, || &html)
    }

    fn selector(css: &str) -> Selector {
        Selector::parse(css).unwrap()
    }

    #[test]
    fn every_json_ld_script_is_an_element_of_the_list() {
        let body = r#"<script type="application/ld+json">{"@type": "BreadcrumbList"}</script>
            <script type="application/ld+json">{oops</script>
            <script type="application/ld+json">{"@type": "RealEstateListing", "name": "Flat"}</script>"#;
        let read = read_html(
            &DocumentSource::Scripts(selector(r#"script[type="application/ld+json"]"#)),
            body,
        )
        .unwrap();
        assert_eq!(
            read.value,
            json!([{"@type": "BreadcrumbList"}, {"@type": "RealEstateListing", "name": "Flat"}])
        );
        assert_eq!(read.partial.len(), 1);
        assert!(
            read.partial[0]
                .to_string()
                .starts_with("the script 2 of 3 is not JSON")
        );
    }

    #[test]
    fn assignments_and_calls_are_read_from_javascript_scripts_only() {
        let body = r#"<script type="application/json">{"window": 1}</script>
            <script>window.__PRELOADED_STATE__ = JSON.parse("{\"search\":{\"total\":12}}");</script>
            <script src="/app.js">window.__PRELOADED_STATE__ = 1;</script>"#;
        let name = vec!["window".to_owned(), "__PRELOADED_STATE__".to_owned()];
        let read = read_html(&DocumentSource::Assignment(name), body).unwrap();
        assert_eq!(read.value, json!({"search": {"total": 12}}));
    }

    #[test]
    fn flight_chunks_decode_into_their_rows() {
        let body = r#"<script>(self.__next_f=self.__next_f||[]).push([0])</script>
            <script>self.__next_f.push([1,"1:\"$Sreact.fragment\"\n2:[\"$\",\"$L3\",null,{\"listings\":"])</script>
            <script>self.__next_f.push([1,"[{\"listingId\":\"7\"}],\"totalResults\":264}]\n"])</script>"#;
        let read = read_html(&DocumentSource::NextFlight, body).unwrap();
        assert_eq!(
            read.value,
            json!(["$Sreact.fragment", ["$", "$L3", null, {"listings": [{"listingId": "7"}], "totalResults": 264}]])
        );
        assert!(read.partial.is_empty());
        let problem = read_html(&DocumentSource::NextFlight, "<p>no flight</p>").unwrap_err();
        assert_eq!(
            problem.to_string(),
            "no self.__next_f.push([1, \"...\"]) chunk carries flight data"
        );
    }
}
