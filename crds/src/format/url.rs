//! URLs and URL templates of scrape sources.
//!
//! A template may hold the placeholders `{{offset}}`, `{{limit}}`, `{{page}}` and
//! `{{cursor}}`, filled in by pagination; the scheme and host are always literal so
//! that the hosts a ScrapeJob can reach are visible in its spec.

use std::collections::BTreeSet;

use super::string_format;

string_format! {
    /// An absolute `http` or `https` URL with a literal host.
    HttpUrl,
    max_length = 2048,
    rules = [(
        "self.matches('^https?://[A-Za-z0-9.-]+(:[0-9]+)?([/?#].*)?$') && !self.contains('{{')",
        "must be an absolute http(s) URL with a literal host"
    )]
}

string_format! {
    /// An absolute `http` or `https` URL with a literal host, where the path and query may
    /// hold the pagination placeholders `{{offset}}`, `{{limit}}`, `{{page}}` and `{{cursor}}`.
    UrlTemplate,
    max_length = 2048,
    rules = [(
        "self.matches('^https?://[A-Za-z0-9.-]+(:[0-9]+)?([/?#].*)?$')",
        "must be an absolute http(s) URL with a literal host"
    )]
}

/// A pagination value a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placeholder {
    /// `{{offset}}`: index of the first item of the page.
    Offset,
    /// `{{limit}}`: items per page.
    Limit,
    /// `{{page}}`: page number.
    Page,
    /// `{{cursor}}`: the cursor the previous response returned (empty on the first request).
    Cursor,
}

impl Placeholder {
    /// The name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Offset => "offset",
            Self::Limit => "limit",
            Self::Page => "page",
            Self::Cursor => "cursor",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Offset, Self::Limit, Self::Page, Self::Cursor]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`.
    #[error("unclosed placeholder after {0:?}")]
    Unclosed(String),
    /// A name that is not a pagination value.
    #[error(
        "unknown placeholder {{{{{0}}}}} (use {{{{offset}}}}, {{{{limit}}}}, {{{{page}}}} or {{{{cursor}}}})"
    )]
    Unknown(String),
}

/// Text with pagination placeholders, split into literal parts and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value(Placeholder),
}

impl Template {
    /// Parses text with `{{name}}` placeholders.
    ///
    /// # Errors
    /// On an unclosed or unknown placeholder.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(rest[..start].to_owned()))?;
            let name = after[..end].trim();
            let placeholder = Placeholder::from_name(name)
                .ok_or_else(|| TemplateError::Unknown(name.to_owned()))?;
            parts.push(Part::Value(placeholder));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The placeholders the template uses.
    pub fn placeholders(&self) -> BTreeSet<Placeholder> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Value(placeholder) => Some(*placeholder),
                Part::Literal(_) => None,
            })
            .collect()
    }

    /// Fills in the placeholders.
    pub fn render(&self, value: impl Fn(Placeholder) -> String) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.clone(),
                Part::Value(placeholder) => value(*placeholder),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_placeholders() {
        let template = Template::parse(
            r#"{"limit": {{limit}}, "offset": {{ offset }}, "sort": {"field": "list_date"}}"#,
        )
        .unwrap();
        assert_eq!(
            template.placeholders(),
            BTreeSet::from([Placeholder::Offset, Placeholder::Limit])
        );
        let body = template.render(|p| match p {
            Placeholder::Offset => "42".into(),
            _ => "42".into(),
        });
        assert_eq!(
            body,
            r#"{"limit": 42, "offset": 42, "sort": {"field": "list_date"}}"#
        );
    }

    #[test]
    fn refuses_unknown_and_unclosed_placeholders() {
        assert_eq!(
            Template::parse("https://api.example.com/list?p={{pg}}")
                .unwrap_err()
                .to_string(),
            "unknown placeholder {{pg}} (use {{offset}}, {{limit}}, {{page}} or {{cursor}})"
        );
        assert_eq!(
            Template::parse("https://api.example.com/list?p={{page")
                .unwrap_err()
                .to_string(),
            "unclosed placeholder after \"https://api.example.com/list?p=\""
        );
    }
}
