//! Errors of the Rust-side validation: what CEL cannot check at `kubectl apply`
//! (selector, JSONPath and regex syntax, cron ranges, CQL types, template placeholders).
//!
//! Each `validate` turns a spec into a `Validated...` value with typed fields, or
//! returns every problem found, each with the path of its field, so a status
//! condition can show them all at once.

use std::fmt::{self, Display};

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Path of the field, as `kubectl explain` names it (`spec.extract.fields[price].regex`).
    pub path: String,
    /// What is wrong, in lower case, one line.
    pub message: String,
}

/// Every problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSpec(pub Vec<FieldError>);

impl Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Collects problems while a spec is parsed.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    /// Records a problem.
    pub(crate) fn push(&mut self, path: impl Display, message: impl Display) {
        self.0.push(FieldError {
            path: path.to_string(),
            message: message.to_string(),
        });
    }

    /// Keeps the value of `result`, or records its error and returns `None`.
    pub(crate) fn check<T, E: Display>(
        &mut self,
        path: impl Display,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|error| self.push(path, error)).ok()
    }

    /// Like [`Problems::check`] for an optional field.
    pub(crate) fn check_opt<S, T, E: Display>(
        &mut self,
        path: impl Display,
        value: Option<&S>,
        parse: impl FnOnce(&S) -> Result<T, E>,
    ) -> Option<T> {
        value.and_then(|value| self.check(path, parse(value)))
    }

    /// The value built from the parsed parts, if nothing was wrong.
    ///
    /// `build` runs only when no problem was recorded, so it may unwrap the parts
    /// that [`Problems::check`] returned.
    pub(crate) fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, InvalidSpec> {
        if self.0.is_empty()
            && let Some(value) = build()
        {
            return Ok(value);
        }
        Err(InvalidSpec(self.0))
    }
}
