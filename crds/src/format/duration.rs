//! Durations as users write them in Kubernetes (`500ms`, `30s`, `5m`, `1h30m`).

use std::time::Duration as StdDuration;

use super::string_format;

string_format! {
    /// A duration: one or more decimal numbers each with a unit `ms`, `s`, `m` or `h`,
    /// e.g. `750ms`, `30s`, `1h30m` (the Go / Kubernetes notation without `ns` and `us`).
    Duration,
    max_length = 32,
    rules = [(
        "self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$')",
        "must be a duration such as 500ms, 30s, 5m or 1h30m"
    )]
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A number was expected.
    #[error("expected a number at {0:?}")]
    ExpectedNumber(String),
    /// A number had no unit after it.
    #[error("missing unit after {0:?} (use ms, s, m or h)")]
    MissingUnit(String),
    /// The value is too large to represent.
    #[error("duration is too large")]
    Overflow,
    /// The value lies outside the bounds the field allows.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// Smallest allowed value, as written in the error.
        min: String,
        /// Largest allowed value, as written in the error.
        max: String,
    },
}

impl Duration {
    /// Parses the duration.
    ///
    /// # Errors
    /// When the text is not a sequence of `<number><unit>` parts.
    pub fn parse(&self) -> Result<StdDuration, DurationError> {
        parse(self.as_str())
    }

    /// Parses the duration and checks that it lies within `min..=max`.
    ///
    /// # Errors
    /// When the text does not parse or the value is out of range.
    pub fn parse_within(
        &self,
        min: StdDuration,
        max: StdDuration,
    ) -> Result<StdDuration, DurationError> {
        let value = self.parse()?;
        if value < min || value > max {
            return Err(DurationError::OutOfRange {
                min: display(min),
                max: display(max),
            });
        }
        Ok(value)
    }
}

/// Parses `1h30m`-style text.
///
/// # Errors
/// When the text is not a sequence of `<number><unit>` parts.
pub fn parse(text: &str) -> Result<StdDuration, DurationError> {
    let mut rest = text;
    let mut total = StdDuration::ZERO;
    if rest.is_empty() {
        return Err(DurationError::ExpectedNumber(String::new()));
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = match number.parse() {
            Ok(value) if !number.starts_with('.') && !number.ends_with('.') => value,
            _ => return Err(DurationError::ExpectedNumber(rest.to_owned())),
        };
        let (unit_seconds, after) = if let Some(after) = after.strip_prefix("ms") {
            (0.001, after)
        } else if let Some(after) = after.strip_prefix('s') {
            (1.0, after)
        } else if let Some(after) = after.strip_prefix('m') {
            (60.0, after)
        } else if let Some(after) = after.strip_prefix('h') {
            (3600.0, after)
        } else {
            return Err(DurationError::MissingUnit(number.to_owned()));
        };
        let part = StdDuration::try_from_secs_f64(value * unit_seconds)
            .map_err(|_| DurationError::Overflow)?;
        total = total.checked_add(part).ok_or(DurationError::Overflow)?;
        rest = after;
    }
    Ok(total)
}

/// Formats a duration in the notation [`parse`] reads, for error messages.
pub fn display(duration: StdDuration) -> String {
    let millis = duration.as_millis();
    match millis {
        m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("500ms").unwrap(), StdDuration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), StdDuration::from_secs(30));
        assert_eq!(parse("1h30m").unwrap(), StdDuration::from_secs(5400));
        assert_eq!(parse("1.5s").unwrap(), StdDuration::from_millis(1500));
        assert_eq!(
            parse("2m10s250ms").unwrap(),
            StdDuration::from_millis(130_250)
        );
    }

    #[test]
    fn refuses_malformed_text_with_a_reason() {
        assert_eq!(
            parse("").unwrap_err().to_string(),
            "expected a number at \"\""
        );
        assert_eq!(
            parse("10").unwrap_err().to_string(),
            "missing unit after \"10\" (use ms, s, m or h)"
        );
        assert_eq!(
            parse("5d").unwrap_err().to_string(),
            "missing unit after \"5\" (use ms, s, m or h)"
        );
        assert_eq!(
            parse("s").unwrap_err().to_string(),
            "expected a number at \"s\""
        );
        assert_eq!(
            parse("1.s").unwrap_err().to_string(),
            "expected a number at \"1.s\""
        );
    }

    #[test]
    fn checks_bounds() {
        let timeout = Duration::from("20m");
        let err = timeout
            .parse_within(StdDuration::from_secs(1), StdDuration::from_secs(600))
            .unwrap_err();
        assert_eq!(err.to_string(), "must be between 1s and 10m");
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(display(StdDuration::from_secs(7200)), "2h");
        assert_eq!(display(StdDuration::from_millis(250)), "250ms");
        assert_eq!(display(StdDuration::ZERO), "0s");
    }
}
