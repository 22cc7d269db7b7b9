//! Names of JavaScript values assigned or called in a page's inline scripts, e.g.
//! `window.__PRELOADED_STATE__` or `dataLayer.push`.

use super::string_format;

string_format! {
    /// A dotted JavaScript name: identifiers joined by `.`, e.g. `window.jsonModel`
    /// or `self.__next_f.push`.
    ScriptName,
    max_length = 256,
    rules = [(
        "self.matches('^[A-Za-z_$][A-Za-z0-9_$]*([.][A-Za-z_$][A-Za-z0-9_$]*)*$')",
        "must be a dotted JavaScript name, e.g. window.__PRELOADED_STATE__"
    )]
}

/// A name that is not a dotted JavaScript name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a dotted JavaScript name (identifiers joined by '.')")]
pub struct ScriptNameError(String);

impl ScriptName {
    /// The identifiers of the name, in order.
    ///
    /// # Errors
    /// When a part is empty or not an identifier.
    pub fn parse(&self) -> Result<Vec<String>, ScriptNameError> {
        let identifier = |part: &str| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        let parts: Vec<String> = self.0.split('.').map(str::to_owned).collect();
        if parts.iter().all(|part| identifier(part)) {
            Ok(parts)
        } else {
            Err(ScriptNameError(self.0.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_dotted_names_and_refuses_others() {
        assert_eq!(
            ScriptName::from("self.__next_f.push").parse().unwrap(),
            ["self", "__next_f", "push"]
        );
        assert_eq!(ScriptName::from("$data").parse().unwrap(), ["$data"]);
        for text in ["window.", ".a", "a..b", "window['x']", "1abc", "a b"] {
            assert!(ScriptName::from(text).parse().is_err(), "{text}");
        }
    }
}
