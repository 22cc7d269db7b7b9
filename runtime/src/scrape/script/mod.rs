//! Data that a page's inline scripts assign or pass, read without running them: the
//! scripts are tokenized ([`lexer`]) and the value after `NAME =` or `NAME(` parsed as
//! a JavaScript literal ([`literal`]), so that `window.__PRELOADED_STATE__ = {...}`,
//! `dataLayer.push({...})` and the Next.js flight chunks are readable over plain HTTP.

pub mod flight;
pub mod lexer;
pub mod literal;

use serde_json::Value;

use lexer::{Spanned, Token};
use literal::LiteralError;

/// Names of the global object: `window.x` is also assigned by `var x = ...`.
const GLOBALS: [&str; 3] = ["window", "self", "globalThis"];

/// Why a name's value could not be read from the scripts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// No inline script assigns or calls the name.
    #[error("no inline script {action} {name}{lex}")]
    NotFound {
        /// `assigns` or `calls`.
        action: &'static str,
        /// The dotted name.
        name: String,
        /// A note on scripts that could not be tokenized, which may hold it.
        lex: String,
    },
    /// The value is not a constant literal.
    #[error("the value {action} {name} in script {script} is not a literal: {source}")]
    NotLiteral {
        /// `assigned to` or `passed to`.
        action: &'static str,
        /// The dotted name.
        name: String,
        /// Index of the script among the page's inline scripts.
        script: usize,
        /// Where and what.
        source: LiteralError,
    },
}

/// The literal first assigned to `name` in `scripts` (page order).
///
/// # Errors
/// When no script assigns a literal to it; the first non-literal value found is named.
pub fn assignment<'a>(
    scripts: impl Iterator<Item = &'a str>,
    name: &[String],
) -> Result<Value, ScriptError> {
    let mut search = Search::new(name, "assigns");
    for (index, script) in scripts.enumerate() {
        let Some(tokens) = search.tokenize(index, script) else {
            continue;
        };
        let starts: Vec<usize> = search.occurrences(&tokens, "=").collect();
        for start in starts {
            match search.literal(&tokens, start, index, script.len(), "assigned to") {
                Ok(value) => return Ok(value),
                Err(error) => search.remember(error),
            }
        }
    }
    Err(search.not_found())
}

/// The first argument of every call of `name` in `scripts`, in page order, and the
/// errors of calls whose argument is not a literal.
///
/// # Errors
/// When no script calls the name with a literal.
pub fn calls<'a>(
    scripts: impl Iterator<Item = &'a str>,
    name: &[String],
) -> Result<(Vec<Value>, Vec<ScriptError>), ScriptError> {
    let mut search = Search::new(name, "calls");
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (index, script) in scripts.enumerate() {
        let Some(tokens) = search.tokenize(index, script) else {
            continue;
        };
        for start in search.occurrences(&tokens, "(") {
            if tokens.get(start).map(|t| &t.token) == Some(&Token::Punct(")")) {
                continue;
            }
            match search.literal(&tokens, start, index, script.len(), "passed to") {
                Ok(value) => values.push(value),
                Err(error) => errors.push(error),
            }
        }
    }
    if values.is_empty() {
        if let Some(error) = errors.into_iter().next() {
            return Err(error);
        }
        return Err(search.not_found());
    }
    Ok((values, errors))
}

/// One search for a name through a page's scripts.
struct Search<'n> {
    name: &'n [String],
    /// The name as a declared variable (`var NAME`), when it can be one.
    variable: Option<&'n str>,
    action: &'static str,
    first_error: Option<ScriptError>,
    lex_errors: Vec<String>,
}

impl<'n> Search<'n> {
    fn new(name: &'n [String], action: &'static str) -> Self {
        let variable = match name {
            [only] => Some(only.as_str()),
            [global, only] if GLOBALS.contains(&global.as_str()) => Some(only.as_str()),
            _ => None,
        };
        Self {
            name,
            variable,
            action,
            first_error: None,
            lex_errors: Vec::new(),
        }
    }

    fn tokenize<'s>(&mut self, index: usize, script: &'s str) -> Option<Vec<Spanned<'s>>> {
        lexer::tokenize(script)
            .inspect_err(|error| self.lex_errors.push(format!("script {index}: {error}")))
            .ok()
    }

    /// Indices of the tokens right after each `NAME <punct>` in `tokens`.
    fn occurrences<'t>(
        &self,
        tokens: &'t [Spanned<'_>],
        punct: &'static str,
    ) -> impl Iterator<Item = usize> + use<'t, '_, 'n> {
        (0..tokens.len()).filter_map(move |start| {
            let after = self.matches_at(tokens, start)?;
            (tokens.get(after)?.token == Token::Punct(punct)).then_some(after + 1)
        })
    }

    /// Where the name ends if it starts at `start`: as written, or as a variable.
    fn matches_at(&self, tokens: &[Spanned<'_>], start: usize) -> Option<usize> {
        let token = |i: usize| tokens.get(i).map(|spanned| &spanned.token);
        let member = start > 0 && matches!(token(start - 1), Some(Token::Punct("." | "?.")));
        if member {
            return None;
        }
        let dotted = self.name.iter().enumerate().all(|(i, part)| {
            token(start + 2 * i) == Some(&Token::Ident(part))
                && (i == 0 || token(start + 2 * i - 1) == Some(&Token::Punct(".")))
        });
        if dotted {
            return Some(start + 2 * self.name.len() - 1);
        }
        let variable = self.variable?;
        if matches!(token(start), Some(Token::Ident("var" | "let" | "const")))
            && token(start + 1) == Some(&Token::Ident(variable))
        {
            return Some(start + 2);
        }
        (self.name.len() == 2 && token(start) == Some(&Token::Ident(variable))).then_some(start + 1)
    }

    fn literal(
        &self,
        tokens: &[Spanned<'_>],
        start: usize,
        script: usize,
        end: usize,
        action: &'static str,
    ) -> Result<Value, ScriptError> {
        let mut next = start;
        literal::parse(tokens, &mut next, end).map_err(|source| ScriptError::NotLiteral {
            action,
            name: self.name.join("."),
            script,
            source,
        })
    }

    fn remember(&mut self, error: ScriptError) {
        self.first_error.get_or_insert(error);
    }

    fn not_found(self) -> ScriptError {
        if let Some(error) = self.first_error {
            return error;
        }
        let lex = if self.lex_errors.is_empty() {
            String::new()
        } else {
            format!(
                " (scripts that are not JavaScript were skipped: {})",
                self.lex_errors.join("; ")
            )
        };
        ScriptError::NotFound {
            action: self.action,
            name: self.name.join("."),
            lex,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn name(dotted: &str) -> Vec<String> {
        dotted.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn finds_the_first_literal_assigned_to_a_name() {
        let scripts = [
            "var x = 'window.jsonModel = 1'; other.window.jsonModel = {no: 1};",
            "window.jsonModel = window.jsonModel || {};",
            "window.jsonModel = {properties: [{id: 1, price: {amount: 3000}}], resultCount: '199'};",
        ];
        assert_eq!(
            assignment(scripts.into_iter(), &name("window.jsonModel")).unwrap(),
            json!({"properties": [{"id": 1, "price": {"amount": 3000}}], "resultCount": "199"})
        );
    }

    #[test]
    fn a_global_is_also_found_as_a_variable() {
        for script in [
            "var __STATE__ = {a: 1};",
            "const __STATE__ = {a: 1}",
            "__STATE__ = {a: 1}",
        ] {
            assert_eq!(
                assignment([script].into_iter(), &name("window.__STATE__")).unwrap(),
                json!({"a": 1}),
                "{script}"
            );
        }
    }

    #[test]
    fn a_missing_or_non_literal_assignment_says_so() {
        let error = assignment(["var a = 1;"].into_iter(), &name("window.b")).unwrap_err();
        assert_eq!(error.to_string(), "no inline script assigns window.b");
        let error = assignment(["window.b = make();"].into_iter(), &name("window.b")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the value assigned to window.b in script 0 is not a literal: `make` is not a literal at byte 11"
        );
        let error = assignment(["x = 'open"].into_iter(), &name("b")).unwrap_err();
        assert!(error.to_string().contains("unterminated string"), "{error}");
    }

    #[test]
    fn collects_the_first_argument_of_every_call() {
        let scripts = [
            "dataLayer.push({event: 'view', id: 1}); dataLayer.push(f());",
            "dataLayer.push({event: 'view', id: 2}, 'ignored'); dataLayer.push();",
        ];
        let (values, errors) = calls(scripts.into_iter(), &name("dataLayer.push")).unwrap();
        assert_eq!(
            values,
            [
                json!({"event": "view", "id": 1}),
                json!({"event": "view", "id": 2})
            ]
        );
        assert_eq!(errors.len(), 1);
    }
}
