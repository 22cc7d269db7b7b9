//! A JavaScript tokenizer, as much of one as finding assignments and calls in a page's
//! inline scripts needs: identifiers, punctuators, string and template literals (their
//! values decoded), numbers, regular expression literals and comments.
//!
//! A tokenizer rather than a text search, so that a name inside a string, a comment
//! or a regular expression is never taken for code. Whether `/` starts a regular
//! expression or divides is decided by the token before it, as engines do for the
//! cases that occur in practice.

/// A token of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Token<'s> {
    /// An identifier or keyword.
    Ident(&'s str),
    /// A punctuator, e.g. `=`, `.`, `(`, `===`.
    Punct(&'s str),
    /// A string literal, its value decoded.
    Str(String),
    /// A template literal without substitutions, its value decoded.
    Template(String),
    /// A template literal with `${...}` substitutions (not a constant).
    TemplateWithSubstitutions,
    /// A numeric literal as written.
    Number(&'s str),
    /// A regular expression literal.
    Regex,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<'s> {
    /// The token.
    pub token: Token<'s>,
    /// Its byte offset in the script.
    pub at: usize,
}

/// Text that is not JavaScript (an unterminated string, comment or template).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct LexError {
    /// What is wrong.
    pub what: &'static str,
    /// Where.
    pub at: usize,
}

/// Punctuators, longest first so that the first match is the longest.
const PUNCTUATORS: [&str; 52] = [
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "=>", "==", "!=",
    "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "**", "<<", ">>", "{", "}", "(", ")", "[", "]", ";", ",", "<", ">", "+", "-", "*", "%", "&",
    "|", "^", "!", "~",
];

/// Keywords after which `/` starts a regular expression, not a division.
const EXPRESSION_KEYWORDS: [&str; 14] = [
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

/// Splits `source` into tokens.
///
/// # Errors
/// At the first unterminated string, template, comment or regular expression; the
/// tokens before it are lost, as the rest of the script cannot be trusted.
pub fn tokenize(source: &str) -> Result<Vec<Spanned<'_>>, LexError> {
    let mut lexer = Lexer {
        source,
        at: 0,
        division_allowed: false,
    };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok(tokens)
}

struct Lexer<'s> {
    source: &'s str,
    at: usize,
    /// Whether a `/` here divides (after an operand) rather than starts a regex.
    division_allowed: bool,
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        &self.source[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next_token(&mut self) -> Result<Option<Spanned<'s>>, LexError> {
        self.skip_space_and_comments()?;
        let start = self.at;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let token = if c == '"' || c == '\'' {
            Token::Str(self.string(c)?)
        } else if c == '`' {
            self.template()?
        } else if c.is_ascii_digit()
            || (c == '.' && self.rest()[1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            Token::Number(self.number())
        } else if c == '_' || c == '$' || c.is_alphabetic() {
            Token::Ident(self.identifier())
        } else if c == '/' && !self.division_allowed {
            self.regex()?;
            Token::Regex
        } else {
            Token::Punct(self.punctuator(c))
        };
        self.division_allowed = match &token {
            Token::Ident(word) => !EXPRESSION_KEYWORDS.contains(word),
            Token::Punct(punct) => matches!(*punct, ")" | "]" | "}"),
            Token::Str(_)
            | Token::Template(_)
            | Token::TemplateWithSubstitutions
            | Token::Number(_)
            | Token::Regex => true,
        };
        Ok(Some(Spanned { token, at: start }))
    }

    fn skip_space_and_comments(&mut self) -> Result<(), LexError> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if trimmed.starts_with("//") || trimmed.starts_with("<!--") {
                self.at += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(comment) = trimmed.strip_prefix("/*") {
                let end = comment.find("*/").ok_or(LexError {
                    what: "unterminated comment",
                    at: self.at,
                })?;
                self.at += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    fn identifier(&mut self) -> &'s str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c == '_' || c == '$' || c.is_alphanumeric()))
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    fn number(&mut self) -> &'s str {
        let rest = self.rest();
        let hex = rest.starts_with("0x") || rest.starts_with("0X");
        let mut end = 0;
        let bytes = rest.as_bytes();
        while end < bytes.len() {
            let b = bytes[end];
            let exponent_sign = !hex
                && (b == b'+' || b == b'-')
                && end > 0
                && matches!(bytes[end - 1], b'e' | b'E');
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                end += 1;
            } else {
                break;
            }
        }
        self.at += end;
        &rest[..end]
    }

    fn punctuator(&mut self, c: char) -> &'s str {
        let rest = self.rest();
        let len = PUNCTUATORS
            .iter()
            .find(|punct| rest.starts_with(**punct))
            // Anything else (`?`, `:`, `=`, `.`, `/`, a stray character) is one character.
            .map_or(c.len_utf8(), |punct| punct.len());
        self.at += len;
        &rest[..len]
    }

    /// A quoted string from its opening `quote`, decoded.
    fn string(&mut self, quote: char) -> Result<String, LexError> {
        let start = self.at;
        self.at += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(LexError {
                    what: "unterminated string",
                    at: start,
                });
            };
            self.at += c.len_utf8();
            match c {
                _ if c == quote => return Ok(value),
                '\\' => self.escape(&mut value, start)?,
                '\n' => {
                    return Err(LexError {
                        what: "unterminated string",
                        at: start,
                    });
                }
                _ => value.push(c),
            }
        }
    }

    /// A template literal from its backtick: its value when it has no substitutions.
    fn template(&mut self) -> Result<Token<'s>, LexError> {
        let start = self.at;
        self.at += 1;
        let mut value = String::new();
        let mut substitutions = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(LexError {
                    what: "unterminated template",
                    at: start,
                });
            };
            self.at += c.len_utf8();
            match c {
                '`' => break,
                '\\' => self.escape(&mut value, start)?,
                '$' if self.peek() == Some('{') => {
                    self.at += 1;
                    substitutions = true;
                    self.skip_substitution(start)?;
                }
                _ => value.push(c),
            }
        }
        Ok(if substitutions {
            Token::TemplateWithSubstitutions
        } else {
            Token::Template(value)
        })
    }

    /// Skips the tokens of a `${...}` up to its closing brace.
    fn skip_substitution(&mut self, start: usize) -> Result<(), LexError> {
        self.division_allowed = false;
        let mut depth = 1_usize;
        while depth > 0 {
            let token = self.next_token()?.ok_or(LexError {
                what: "unterminated template",
                at: start,
            })?;
            match token.token {
                Token::Punct("{") => depth += 1,
                Token::Punct("}") => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// Decodes the escape after a backslash into `value`.
    fn escape(&mut self, value: &mut String, start: usize) -> Result<(), LexError> {
        let unterminated = LexError {
            what: "unterminated string",
            at: start,
        };
        let c = self.peek().ok_or(unterminated.clone())?;
        self.at += c.len_utf8();
        match c {
            'n' => value.push('\n'),
            't' => value.push('\t'),
            'r' => value.push('\r'),
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'v' => value.push('\u{b}'),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => value.push('\0'),
            'x' => {
                let code = self.hex_digits(2).ok_or(unterminated)?;
                value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            'u' => {
                let code = self.unicode_escape().ok_or(unterminated)?;
                self.push_code_unit(value, code);
            }
            // A line continuation: the backslash and the line break vanish.
            '\r' => {
                if self.peek() == Some('\n') {
                    self.at += 1;
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            other => value.push(other),
        }
        Ok(())
    }

    /// `\uXXXX` or `\u{X...}` after the `u`.
    fn unicode_escape(&mut self) -> Option<u32> {
        if self.peek() == Some('{') {
            let end = self.rest().find('}')?;
            let code = u32::from_str_radix(&self.rest()[1..end], 16).ok()?;
            self.at += end + 1;
            Some(code)
        } else {
            self.hex_digits(4)
        }
    }

    fn hex_digits(&mut self, count: usize) -> Option<u32> {
        let digits = self.rest().get(..count)?;
        let code = u32::from_str_radix(digits, 16).ok()?;
        self.at += count;
        Some(code)
    }

    /// Pushes a UTF-16 code unit, joining a high surrogate with the low one after it.
    fn push_code_unit(&mut self, value: &mut String, code: u32) {
        if (0xD800..0xDC00).contains(&code) && self.rest().starts_with("\\u") {
            let saved = self.at;
            self.at += 2;
            match self.hex_digits(4) {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    let joined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    value.push(char::from_u32(joined).unwrap_or('\u{fffd}'));
                    return;
                }
                _ => self.at = saved,
            }
        }
        value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
    }

    /// Skips a regular expression literal from its opening `/`, flags included.
    fn regex(&mut self) -> Result<(), LexError> {
        let start = self.at;
        self.at += 1;
        let mut in_class = false;
        loop {
            let c = self.peek().ok_or(LexError {
                what: "unterminated regular expression",
                at: start,
            })?;
            self.at += c.len_utf8();
            match c {
                '\\' => {
                    if let Some(next) = self.peek() {
                        self.at += next.len_utf8();
                    }
                }
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => break,
                '\n' => {
                    return Err(LexError {
                        what: "unterminated regular expression",
                        at: start,
                    });
                }
                _ => {}
            }
        }
        self.identifier();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(source: &str) -> Vec<Token<'_>> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|spanned| spanned.token)
            .collect()
    }

    #[test]
    fn names_in_strings_comments_and_regexes_are_not_code() {
        let source = r#"// window.x = 1
            /* window.x = 2 */ var s = "window.x = 3", r = /window.x = 4/g;
            window.x = 5;"#;
        let idents: Vec<_> = tokens(source)
            .into_iter()
            .filter_map(|token| match token {
                Token::Ident(name) => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(idents, ["var", "s", "r", "window", "x"]);
    }

    #[test]
    fn division_and_regex_are_told_apart() {
        assert_eq!(
            tokens("a = b / c / d"),
            [
                Token::Ident("a"),
                Token::Punct("="),
                Token::Ident("b"),
                Token::Punct("/"),
                Token::Ident("c"),
                Token::Punct("/"),
                Token::Ident("d"),
            ]
        );
        assert_eq!(
            tokens("return /[/]x/i.test(s)")[1..3],
            [Token::Regex, Token::Punct(".")]
        );
    }

    #[test]
    fn strings_and_templates_are_decoded() {
        assert_eq!(
            tokens(r#"'it\'s' "\u00e9\u{1F3E0}\ud83c\udfe0\x41\n" `a${ {b: `c`}.b }d` `plain\t`"#),
            [
                Token::Str("it's".into()),
                Token::Str("é🏠🏠A\n".into()),
                Token::TemplateWithSubstitutions,
                Token::Template("plain\t".into()),
            ]
        );
    }

    #[test]
    fn numbers_and_punctuators_take_their_longest_form() {
        assert_eq!(
            tokens("x>>>=1e-3,.5,0x1F;a?.b"),
            [
                Token::Ident("x"),
                Token::Punct(">>>="),
                Token::Number("1e-3"),
                Token::Punct(","),
                Token::Number(".5"),
                Token::Punct(","),
                Token::Number("0x1F"),
                Token::Punct(";"),
                Token::Ident("a"),
                Token::Punct("?."),
                Token::Ident("b"),
            ]
        );
    }

    #[test]
    fn unterminated_text_is_an_error() {
        for source in ["'abc", "/* abc", "`abc${x}", "x = /abc"] {
            assert!(tokenize(source).is_err(), "{source}");
        }
    }
}
