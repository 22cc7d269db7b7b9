//! The follow checks: next-page and detail-page links of the kind the items are (CSS
//! in the DOM, JSONPath in JSON), and the fields read on detail pages.

use std::num::NonZeroU32;

use super::extract::{self, DocumentSource, ValidatedDocument, ValidatedField};
use super::positive;
use crate::format::jsonpath::JsonPath;
use crate::scrapejob::crawl::{Follow, Link};
use crate::validation::Problems;

/// A link element of the DOM.
#[derive(Debug, Clone)]
pub struct ValidatedLink {
    /// The link element.
    pub css: scraper::Selector,
    /// The attribute holding the URL.
    pub attribute: String,
}

/// Next-page links.
#[derive(Debug, Clone)]
pub struct ValidatedNextPage {
    /// The link on each page: in its DOM, or in the document its JSON items come from.
    pub link: PageLink,
    /// Pages per start URL.
    pub max_pages: NonZeroU32,
}

/// Where a link to another page is: in the DOM (of the page or of a CSS item), or in
/// JSON (the items' document or a JSON item).
#[derive(Debug, Clone)]
pub enum PageLink {
    /// An element.
    Css(ValidatedLink),
    /// A value, resolved against the page URL.
    Json(serde_json_path::JsonPath),
}

/// Detail pages.
#[derive(Debug, Clone)]
pub struct ValidatedDetailPages {
    /// The link from the item.
    pub link: PageLink,
    /// The JSON document `jsonPath` fields without a document read, if any.
    pub from: Option<DocumentSource>,
    /// The documents fields with a document read.
    pub documents: Vec<ValidatedDocument>,
    /// Fields read there.
    pub fields: Vec<ValidatedField>,
    /// Bound per run.
    pub max_pages: NonZeroU32,
}

fn css_link(link: &Link, path: &str, problems: &mut Problems) -> Option<ValidatedLink> {
    let (Some(css), None) = (&link.css, &link.json_path) else {
        problems.push(path, "the link takes css here, and no jsonPath");
        return None;
    };
    Some(ValidatedLink {
        css: problems.check(format!("{path}.css"), css.parse())?,
        attribute: link.attribute.clone().unwrap_or_else(|| "href".to_owned()),
    })
}

/// The detail link, of the kind the items are: `css` for CSS items, `jsonPath` for JSON items.
fn detail_link(
    link: &Link,
    json_items: bool,
    path: &str,
    problems: &mut Problems,
) -> Option<PageLink> {
    match (&link.json_path, json_items) {
        (Some(json_path), true) => json_link(link, json_path, path, problems),
        (None, false) => css_link(link, path, problems).map(PageLink::Css),
        _ => {
            problems.push(
                path,
                "the link takes css for extract.items.css and jsonPath (without css or attribute) for extract.items.json",
            );
            None
        }
    }
}

/// The next-page link: `css` in the DOM, or with JSON items `jsonPath` in their document.
fn next_link(
    link: &Link,
    json_items: bool,
    path: &str,
    problems: &mut Problems,
) -> Option<PageLink> {
    match &link.json_path {
        Some(json_path) if json_items => json_link(link, json_path, path, problems),
        Some(_) => {
            problems.push(
                path,
                "the link takes jsonPath only for extract.items.json (it reads their document)",
            );
            None
        }
        None => css_link(link, path, problems).map(PageLink::Css),
    }
}

fn json_link(
    link: &Link,
    json_path: &JsonPath,
    path: &str,
    problems: &mut Problems,
) -> Option<PageLink> {
    if link.css.is_some() || link.attribute.is_some() {
        problems.push(path, "a jsonPath link takes no css or attribute");
        return None;
    }
    problems
        .check(format!("{path}.jsonPath"), json_path.parse())
        .map(PageLink::Json)
}

pub(super) fn validate(
    follow: &Follow,
    json_items: bool,
    problems: &mut Problems,
) -> (Option<ValidatedNextPage>, Option<ValidatedDetailPages>) {
    let next_page = follow.next_page.as_ref().and_then(|next| {
        next_link(
            &next.link,
            json_items,
            "spec.follow.nextPage.link",
            problems,
        )
        .map(|link| ValidatedNextPage {
            link,
            max_pages: positive(next.max_pages),
        })
    });
    let detail_pages = follow.detail_pages.as_ref().and_then(|detail| {
        let link = detail_link(
            &detail.link,
            json_items,
            "spec.follow.detailPages.link",
            problems,
        );
        let from = match &detail.from {
            Some(from) => Some(extract::document(
                Some(from),
                "spec.follow.detailPages.from",
                problems,
            )?),
            None => None,
        };
        let documents = extract::named_documents(
            detail.documents.as_deref(),
            "spec.follow.detailPages.documents",
            problems,
        );
        let base = "spec.follow.detailPages.fields";
        let fields = extract::fields(&detail.fields, base, from.is_some(), problems);
        extract::check_field_documents(&documents, &fields, base, problems);
        Some(ValidatedDetailPages {
            link: link?,
            from,
            documents,
            fields,
            max_pages: positive(detail.max_pages),
        })
    });
    (next_page, detail_pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrapejob::ScrapeJobSpec;

    fn spec(items: &str, follow: &str) -> ScrapeJobSpec {
        serde_yaml::from_str(&format!(
            "source: {{http: {{url: 'https://example.com/api'}}}}
output: {{topic: {{name: t}}}}
extract: {{items: {items}, key: id, fields: [{{name: id, jsonPath: $.id}}]}}
follow: {follow}"
        ))
        .unwrap()
    }

    fn detail(items: &str, link: &str) -> ScrapeJobSpec {
        spec(
            items,
            &format!(
                "{{detailPages: {{link: {link}, fields: [{{name: agent, css: .agent}}], maxPages: 5}}}}"
            ),
        )
    }

    fn next(items: &str, link: &str) -> ScrapeJobSpec {
        spec(
            items,
            &format!("{{nextPage: {{link: {link}, maxPages: 5}}}}"),
        )
    }

    #[test]
    fn json_items_take_a_json_path_detail_link() {
        let valid = detail("{json: {path: '$[*]'}}", "{jsonPath: $.href}")
            .validate()
            .unwrap();
        let detail = valid.detail_pages.unwrap();
        let PageLink::Json(path) = &detail.link else {
            panic!("expected a JSONPath link, got {:?}", detail.link)
        };
        let item = serde_json::json!({"href": "/homes/1"});
        assert_eq!(path.query(&item).exactly_one().unwrap(), "/homes/1");
    }

    #[test]
    fn a_detail_link_must_match_the_kind_of_items() {
        for (items, link) in [
            ("{json: {path: '$[*]'}}", "{css: a}"),
            ("{css: li}", "{jsonPath: $.href}"),
            ("{json: {path: '$[*]'}}", "{jsonPath: $.href, css: a}"),
            (
                "{json: {path: '$[*]'}}",
                "{jsonPath: $.href, attribute: href}",
            ),
            ("{json: {path: '$[*]'}}", "{}"),
        ] {
            let error = detail(items, link).validate().unwrap_err().to_string();
            assert!(
                error.contains("spec.follow.detailPages.link"),
                "{items} {link}: {error}"
            );
        }
    }

    #[test]
    fn a_next_page_link_takes_json_path_with_json_items_and_css_with_any() {
        let json_items = "{json: {path: '$.homes[*]'}}";
        let valid = next(json_items, "{jsonPath: $.next}").validate().unwrap();
        assert!(matches!(valid.next_page.unwrap().link, PageLink::Json(_)));
        let valid = next(json_items, "{css: 'a[rel=next]'}").validate().unwrap();
        assert!(matches!(valid.next_page.unwrap().link, PageLink::Css(_)));
        for (items, link) in [
            ("{css: li}", "{jsonPath: $.next}"),
            (json_items, "{jsonPath: $.next, css: a}"),
            (json_items, "{jsonPath: $.next, attribute: href}"),
            (json_items, "{}"),
        ] {
            let error = next(items, link).validate().unwrap_err().to_string();
            assert!(
                error.contains("spec.follow.nextPage.link"),
                "{items} {link}: {error}"
            );
        }
    }
}
