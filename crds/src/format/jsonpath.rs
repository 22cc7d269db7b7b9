//! JSONPath queries (RFC 9535), used to address JSON documents and records.

use super::string_format;

string_format! {
    /// A JSONPath query (RFC 9535) starting at `$`, e.g.
    /// `$.props.pageProps.searchResults.properties[*]`.
    JsonPath,
    max_length = 1024,
    rules = [(
        "self.startsWith('$')",
        "must be a JSONPath query starting with $ (RFC 9535)"
    )]
}

/// A query that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath: {0}")]
pub struct JsonPathError(String);

impl JsonPath {
    /// Parses the query.
    ///
    /// # Errors
    /// When the text is not an RFC 9535 query.
    pub fn parse(&self) -> Result<serde_json_path::JsonPath, JsonPathError> {
        serde_json_path::JsonPath::parse(self.as_str())
            .map_err(|error| JsonPathError(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_queries() {
        let path = JsonPath::from("$.data.home_search.results[*].list_price")
            .parse()
            .unwrap();
        let document = serde_json::json!({"data": {"home_search": {"results": [
            {"list_price": 2_000_000}, {"list_price": 799_000}
        ]}}});
        let prices: Vec<_> = path.query(&document).all().into_iter().cloned().collect();
        assert_eq!(
            prices,
            [serde_json::json!(2_000_000), serde_json::json!(799_000)]
        );
        JsonPath::from("$..[?@.featured == true].id")
            .parse()
            .unwrap();
        JsonPath::from("$['props']['pageProps']").parse().unwrap();
    }

    #[test]
    fn refuses_malformed_queries() {
        for text in ["$.props[", "$.a.[b]", "props.pageProps", "$[?(@.price > )]"] {
            let error = JsonPath::from(text).parse().unwrap_err();
            assert!(
                error.to_string().starts_with("invalid JSONPath: "),
                "{text}: {error}"
            );
        }
    }
}
