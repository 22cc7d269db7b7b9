//! JavaScript literals to JSON values: objects (quoted, bare and numeric keys, trailing
//! commas), arrays (holes are null), strings, templates without substitutions, numbers
//! in every notation, `true`, `false`, `null`, the minifier's `!0` and `!1`,
//! `undefined`, `void 0`, `NaN` and `Infinity` (null: JSON has none of them) and
//! `JSON.parse("...")` of a string. Anything else (a variable, a function, a spread)
//! is not a constant, and an error says where it is.

use serde_json::{Map, Number, Value};

use super::lexer::{Spanned, Token};

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

/// Why the tokens at a position are not a literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct LiteralError {
    /// What was found instead.
    pub what: String,
    /// Byte offset in the script.
    pub at: usize,
}

/// Parses the literal that starts at `tokens[*next]`, leaving `*next` after it.
///
/// # Errors
/// When the tokens there are not a constant literal.
pub fn parse(tokens: &[Spanned<'_>], next: &mut usize, end: usize) -> Result<Value, LiteralError> {
    let mut parser = Parser {
        tokens,
        next: *next,
        end,
    };
    let value = parser.value(0)?;
    *next = parser.next;
    Ok(value)
}

struct Parser<'t, 's> {
    tokens: &'t [Spanned<'s>],
    next: usize,
    /// Byte offset of the script's end, for errors at the end.
    end: usize,
}

impl<'s> Parser<'_, 's> {
    fn peek(&self) -> Option<&Token<'s>> {
        self.tokens.get(self.next).map(|spanned| &spanned.token)
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.next)
            .map_or(self.end, |spanned| spanned.at)
    }

    fn error(&self, what: impl Into<String>) -> LiteralError {
        LiteralError {
            what: what.into(),
            at: self.at(),
        }
    }

    fn bump(&mut self) -> Option<&Token<'s>> {
        let token = self.tokens.get(self.next).map(|spanned| &spanned.token);
        self.next += 1;
        token
    }

    fn eat(&mut self, punct: &str) -> bool {
        if self.peek() == Some(&Token::Punct(punct)) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), LiteralError> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.error(format!("expected {punct:?}, found {}", self.found())))
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the script".to_owned(),
            Some(Token::Ident(name)) => format!("`{name}`"),
            Some(Token::Punct(punct)) => format!("{punct:?}"),
            Some(Token::Str(_)) => "a string".to_owned(),
            Some(Token::Template(_) | Token::TemplateWithSubstitutions) => "a template".to_owned(),
            Some(Token::Number(number)) => format!("the number {number}"),
            Some(Token::Regex) => "a regular expression".to_owned(),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, LiteralError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH}")));
        }
        let start = self.next;
        let Some(token) = self.bump().cloned() else {
            self.next = start;
            return Err(self.error("expected a value, found the end of the script"));
        };
        let value = match token {
            Token::Punct("{") => self.object(depth)?,
            Token::Punct("[") => self.array(depth)?,
            Token::Punct("(") => {
                let value = self.value(depth + 1)?;
                self.expect(")")?;
                value
            }
            Token::Str(text) | Token::Template(text) => Value::String(text),
            Token::Number(text) => number(text).ok_or_else(|| {
                self.next = start;
                self.error(format!("{text} is not a number"))
            })?,
            Token::Punct(sign @ ("-" | "+")) => match self.bump().cloned() {
                Some(Token::Number(text)) => {
                    let value = number(text).ok_or_else(|| self.error("not a number"))?;
                    if sign == "-" { negate(&value) } else { value }
                }
                Some(Token::Ident("Infinity")) => Value::Null,
                _ => {
                    self.next = start;
                    return Err(self.error(format!("{sign} applies to a number only here")));
                }
            },
            Token::Punct("!") => match self.bump() {
                Some(Token::Number("0")) => Value::Bool(true),
                Some(Token::Number("1")) => Value::Bool(false),
                _ => {
                    self.next = start;
                    return Err(self.error("! applies to 0 or 1 only here (!0, !1)"));
                }
            },
            Token::Ident("true") => Value::Bool(true),
            Token::Ident("false") => Value::Bool(false),
            Token::Ident("null" | "undefined" | "NaN" | "Infinity") => Value::Null,
            Token::Ident("void") => match self.bump() {
                Some(Token::Number(_)) => Value::Null,
                _ => {
                    self.next = start;
                    return Err(self.error("void applies to a number only here (void 0)"));
                }
            },
            Token::Ident("JSON") => self.json_parse(start)?,
            _ => {
                self.next = start;
                return Err(self.error(format!("{} is not a literal", self.found())));
            }
        };
        Ok(value)
    }

    fn object(&mut self, depth: usize) -> Result<Value, LiteralError> {
        let mut object = Map::new();
        while !self.eat("}") {
            let key = match self.bump().cloned() {
                Some(Token::Ident(name)) => name.to_owned(),
                Some(Token::Str(text)) => text,
                Some(Token::Number(text)) => match number(text) {
                    Some(value) => value.to_string(),
                    None => return Err(self.error(format!("{text} is not a number"))),
                },
                _ => {
                    self.next -= 1;
                    return Err(
                        self.error(format!("expected a property name, found {}", self.found()))
                    );
                }
            };
            if !self.eat(":") {
                // `{a}`, `{a() {}}`, `[computed]`: references and code, not data.
                return Err(self.error(format!(
                    "expected \":\" after property {key:?}, found {}",
                    self.found()
                )));
            }
            let value = self.value(depth + 1)?;
            object.insert(key, value);
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        Ok(Value::Object(object))
    }

    fn array(&mut self, depth: usize) -> Result<Value, LiteralError> {
        let mut array = Vec::new();
        loop {
            if self.eat("]") {
                break;
            }
            if self.eat(",") {
                array.push(Value::Null);
                continue;
            }
            array.push(self.value(depth + 1)?);
            if !self.eat(",") {
                self.expect("]")?;
                break;
            }
        }
        Ok(Value::Array(array))
    }

    /// `JSON.parse("...")` after the `JSON`: the string parsed as JSON.
    fn json_parse(&mut self, start: usize) -> Result<Value, LiteralError> {
        let is_parse =
            self.eat(".") && self.bump() == Some(&Token::Ident("parse")) && self.eat("(");
        let text = match (is_parse, self.bump().cloned()) {
            (true, Some(Token::Str(text) | Token::Template(text))) => text,
            _ => {
                self.next = start;
                return Err(self.error("JSON is a literal only as JSON.parse(\"...\")"));
            }
        };
        self.expect(")")?;
        serde_json::from_str(&text).map_err(|error| LiteralError {
            what: format!("the string given to JSON.parse is not JSON: {error}"),
            at: self.tokens[start].at,
        })
    }
}

/// A numeric literal's value: decimal, `0x`/`0o`/`0b`, `_` separators, a BigInt `n`.
fn number(text: &str) -> Option<Value> {
    let text = text.replace('_', "");
    let text = text.strip_suffix('n').unwrap_or(&text);
    let radix = match text.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => Some(16),
        Some("0o") => Some(8),
        Some("0b") => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        return u64::from_str_radix(&text[2..], radix).ok().map(Value::from);
    }
    if !text.contains(['.', 'e', 'E'])
        && let Ok(integer) = text.parse::<u64>()
    {
        return Some(Value::from(integer));
    }
    let float: f64 = text.parse().ok()?;
    Number::from_f64(float).map(Value::Number)
}

fn negate(value: &Value) -> Value {
    match value {
        Value::Number(number) => match (number.as_u64(), number.as_f64()) {
            (Some(0), _) => Value::from(0),
            (Some(integer), _) if i64::try_from(integer).is_ok() => {
                Value::from(-i64::try_from(integer).unwrap_or_default())
            }
            (_, Some(float)) => Number::from_f64(-float).map_or(Value::Null, Value::Number),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::lexer::tokenize;
    use super::*;

    fn literal(source: &str) -> Result<Value, LiteralError> {
        let tokens = tokenize(source).unwrap();
        let mut next = 0;
        let value = parse(&tokens, &mut next, source.len())?;
        assert_eq!(
            next,
            tokens.len(),
            "{source}: tokens left after the literal"
        );
        Ok(value)
    }

    #[test]
    fn object_literals_as_minifiers_write_them() {
        assert_eq!(
            literal(
                r#"{a:1,'b':"two",3:[1,,3,],"c d":{e:!0,f:!1,g:void 0,h:undefined},i:-2.5e1,j:0x10,k:1_000,l:.5,m:`t`,n:null,}"#
            )
            .unwrap(),
            json!({"a": 1, "b": "two", "3": [1, null, 3], "c d": {"e": true, "f": false, "g": null, "h": null},
                   "i": -25.0, "j": 16, "k": 1000, "l": 0.5, "m": "t", "n": null})
        );
    }

    #[test]
    fn json_parse_of_a_string_is_its_json() {
        assert_eq!(
            literal(r#"JSON.parse("{\"listing\":{\"id\":7,\"tags\":[\"a\"]}}")"#).unwrap(),
            json!({"listing": {"id": 7, "tags": ["a"]}})
        );
        assert!(literal(r#"JSON.parse("{oops")"#).is_err());
    }

    #[test]
    fn references_and_code_are_not_literals() {
        for (source, expected) in [
            ("{a: b}", "`b` is not a literal at byte 4"),
            (
                "{a}",
                "expected \":\" after property \"a\", found \"}\" at byte 2",
            ),
            (
                "{...rest}",
                "expected a property name, found \"...\" at byte 1",
            ),
            ("[f()]", "`f` is not a literal at byte 1"),
            ("{a: `x${y}`}", "a template is not a literal at byte 4"),
            (
                "{a: 1",
                "expected \"}\", found the end of the script at byte 5",
            ),
        ] {
            assert_eq!(
                literal(source).unwrap_err().to_string(),
                expected,
                "{source}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(300) + &"]".repeat(300);
        assert!(literal(&deep).unwrap_err().what.contains("nesting"));
    }
}
