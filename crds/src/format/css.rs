//! CSS selectors, checked with the same selector parser the runtime uses for static HTML.

use super::string_format;

string_format! {
    /// A CSS selector (Selectors Level 4 as browsers implement it), e.g.
    /// `a[data-testid="listing-card-content"]`.
    CssSelector,
    max_length = 1024,
    rules = []
}

/// A selector that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CSS selector: {0}")]
pub struct CssError(String);

impl CssSelector {
    /// Parses the selector.
    ///
    /// # Errors
    /// When the text is not a selector list.
    pub fn parse(&self) -> Result<scraper::Selector, CssError> {
        scraper::Selector::parse(self.as_str()).map_err(|error| CssError(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attribute_and_structural_selectors() {
        for text in [
            r#"a[data-testid="listing-card-content"]"#,
            r#"div[id^="listing_"]"#,
            r#"[class^="price_priceText"], p:first-child"#,
            "script#__NEXT_DATA__",
            "ul > li:nth-child(2n+1) span",
        ] {
            CssSelector::from(text)
                .parse()
                .unwrap_or_else(|error| panic!("{text}: {error}"));
        }
    }

    #[test]
    fn refuses_broken_selectors() {
        let error = CssSelector::from("div[data-testid=").parse().unwrap_err();
        assert!(
            error.to_string().starts_with("invalid CSS selector: "),
            "{error}"
        );
        assert!(CssSelector::from("a >> b").parse().is_err());
        assert!(CssSelector::from("..price").parse().is_err());
    }
}
