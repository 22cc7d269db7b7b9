//! Regular expressions (Rust `regex` syntax, which is RE2's).

use super::string_format;

string_format! {
    /// A regular expression (RE2 syntax). When it has a capture group the first group is
    /// the value, otherwise the whole match is.
    Pattern,
    max_length = 1024,
    rules = []
}

/// Compiled programs above this size are refused: a pattern is user input run on every
/// page or record, so it must stay cheap.
const SIZE_LIMIT: usize = 1 << 20;

/// A pattern that did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression: {0}")]
pub struct PatternError(String);

impl Pattern {
    /// Compiles the pattern.
    ///
    /// # Errors
    /// When the text is not a regular expression or compiles too large.
    pub fn parse(&self) -> Result<regex::Regex, PatternError> {
        regex::RegexBuilder::new(self.as_str())
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|error| PatternError(first_line(&error.to_string())))
    }
}

/// The regex crate's messages draw the pattern over several lines; a condition
/// message must be one line, so keep the part that says what is wrong.
fn first_line(message: &str) -> String {
    let mut lines = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty());
    let summary = lines
        .clone()
        .find(|line| line.starts_with("error:"))
        .map(|line| line.trim_start_matches("error:").trim());
    summary.or_else(|| lines.next()).unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_capturing_patterns() {
        let pattern = Pattern::from(r"listing_(\d+)").parse().unwrap();
        assert_eq!(
            &pattern.captures("listing_73093762").unwrap()[1],
            "73093762"
        );
    }

    #[test]
    fn refuses_broken_patterns_with_a_one_line_reason() {
        let error = Pattern::from(r"(\d+ bed").parse().unwrap_err().to_string();
        assert_eq!(error, "invalid regular expression: unclosed group");
        let error = Pattern::from(r"\p{Bogus}").parse().unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid regular expression: Unicode property not found"
        );
        let error = Pattern::from(r"(?<=£)\d+").parse().unwrap_err().to_string();
        assert!(error.contains("look-around"), "{error}");
    }

    #[test]
    fn refuses_patterns_that_compile_too_large() {
        let error = Pattern::from(r"\w{1000}\w{1000}\w{1000}")
            .parse()
            .unwrap_err()
            .to_string();
        assert!(error.contains("exceeds size limit"), "{error}");
    }
}
