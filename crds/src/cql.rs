//! CQL column types as written in a CassandraSink (`text`, `bigint`,
//! `map<text, frozen<list<int>>>`), parsed into a type the operator renders into DDL.

use std::fmt::{self, Display};

/// The scalar CQL types a sink can write. `counter` is absent on purpose: counter
/// updates are not idempotent, and the sink's writes must be (a replay rewrites rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeType {
    /// `ascii`
    Ascii,
    /// `bigint`
    Bigint,
    /// `blob`
    Blob,
    /// `boolean`
    Boolean,
    /// `date`
    Date,
    /// `decimal`
    Decimal,
    /// `double`
    Double,
    /// `duration`
    Duration,
    /// `float`
    Float,
    /// `inet`
    Inet,
    /// `int`
    Int,
    /// `smallint`
    Smallint,
    /// `text` (also written `varchar`)
    Text,
    /// `time`
    Time,
    /// `timestamp`
    Timestamp,
    /// `timeuuid`
    Timeuuid,
    /// `tinyint`
    Tinyint,
    /// `uuid`
    Uuid,
    /// `varint`
    Varint,
}

const NATIVE: [(&str, NativeType); 20] = [
    ("ascii", NativeType::Ascii),
    ("bigint", NativeType::Bigint),
    ("blob", NativeType::Blob),
    ("boolean", NativeType::Boolean),
    ("date", NativeType::Date),
    ("decimal", NativeType::Decimal),
    ("double", NativeType::Double),
    ("duration", NativeType::Duration),
    ("float", NativeType::Float),
    ("inet", NativeType::Inet),
    ("int", NativeType::Int),
    ("smallint", NativeType::Smallint),
    ("text", NativeType::Text),
    ("varchar", NativeType::Text),
    ("time", NativeType::Time),
    ("timestamp", NativeType::Timestamp),
    ("timeuuid", NativeType::Timeuuid),
    ("tinyint", NativeType::Tinyint),
    ("uuid", NativeType::Uuid),
    ("varint", NativeType::Varint),
];

/// A CQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CqlType {
    /// A scalar type.
    Native(NativeType),
    /// `list<T>`
    List(Box<CqlType>),
    /// `set<T>`
    Set(Box<CqlType>),
    /// `map<K, V>`
    Map(Box<CqlType>, Box<CqlType>),
    /// `tuple<T1, T2, ...>`
    Tuple(Vec<CqlType>),
    /// `frozen<T>`: the collection is stored as one value.
    Frozen(Box<CqlType>),
}

/// A type that does not parse or is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CqlTypeError {
    /// Not CQL type syntax.
    #[error("invalid CQL type {text:?}: {reason}")]
    Syntax {
        /// The whole type as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
}

impl CqlType {
    /// Parses a CQL type (case-insensitive, spaces allowed around `<`, `,` and `>`).
    ///
    /// # Errors
    /// On unknown names, `counter`, unbalanced brackets, wrong argument counts, and a
    /// collection nested in a collection without `frozen`.
    pub fn parse(text: &str) -> Result<Self, CqlTypeError> {
        let lower = text.to_ascii_lowercase();
        let mut parser = Parser {
            rest: lower.as_str(),
        };
        let parsed = parser.parse_type().and_then(|parsed| {
            parser.skip_spaces();
            if parser.rest.is_empty() {
                Ok(parsed)
            } else {
                Err(format!("unexpected {:?}", parser.rest))
            }
        });
        let parsed = parsed.and_then(|parsed| parsed.check_nesting(false).map(|()| parsed));
        parsed.map_err(|reason| CqlTypeError::Syntax {
            text: text.to_owned(),
            reason,
        })
    }

    /// Whether this is a collection that Cassandra stores cell by cell (not frozen):
    /// such a column cannot be part of a primary key.
    pub fn is_multi_cell(&self) -> bool {
        matches!(self, Self::List(_) | Self::Set(_) | Self::Map(..))
    }

    fn check_nesting(&self, inside_collection: bool) -> Result<(), String> {
        match self {
            Self::Native(_) => Ok(()),
            Self::Frozen(inner) => inner.check_nesting(false),
            Self::List(inner) | Self::Set(inner) => {
                self.refuse_unfrozen_nesting(inside_collection)?;
                inner.check_nesting(true)
            }
            Self::Map(key, value) => {
                self.refuse_unfrozen_nesting(inside_collection)?;
                key.check_nesting(true)?;
                value.check_nesting(true)
            }
            Self::Tuple(items) => items.iter().try_for_each(|item| item.check_nesting(true)),
        }
    }

    fn refuse_unfrozen_nesting(&self, inside_collection: bool) -> Result<(), String> {
        if inside_collection {
            return Err(format!(
                "a collection inside another must be frozen: write frozen<{self}>"
            ));
        }
        Ok(())
    }
}

impl Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Native(native) => {
                let name = NATIVE
                    .iter()
                    .find(|(_, n)| n == native)
                    .map_or("", |(name, _)| *name);
                f.write_str(name)
            }
            Self::List(inner) => write!(f, "list<{inner}>"),
            Self::Set(inner) => write!(f, "set<{inner}>"),
            Self::Map(key, value) => write!(f, "map<{key}, {value}>"),
            Self::Frozen(inner) => write!(f, "frozen<{inner}>"),
            Self::Tuple(items) => {
                f.write_str("tuple<")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(">")
            }
        }
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn expect(&mut self, token: char) -> Result<(), String> {
        self.skip_spaces();
        self.rest =
            self.rest
                .strip_prefix(token)
                .ok_or_else(|| match self.rest.chars().next() {
                    Some(found) => format!("expected '{token}' but found '{found}'"),
                    None => format!("expected '{token}' but the type ends"),
                })?;
        Ok(())
    }

    fn parse_type(&mut self) -> Result<CqlType, String> {
        self.skip_spaces();
        let end = self
            .rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(self.rest.len());
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        let arguments = |parser: &mut Self, count: Option<usize>| -> Result<Vec<CqlType>, String> {
            parser.expect('<')?;
            let mut items = vec![parser.parse_type()?];
            loop {
                parser.skip_spaces();
                if parser.rest.starts_with(',') {
                    parser.expect(',')?;
                    items.push(parser.parse_type()?);
                } else {
                    parser.expect('>')?;
                    break;
                }
            }
            match count {
                Some(count) if items.len() != count => Err(format!(
                    "{name} takes {count} type argument{}",
                    if count == 1 { "" } else { "s" }
                )),
                _ => Ok(items),
            }
        };
        match name {
            "list" => Ok(CqlType::List(Box::new(arguments(self, Some(1))?.remove(0)))),
            "set" => Ok(CqlType::Set(Box::new(arguments(self, Some(1))?.remove(0)))),
            "frozen" => Ok(CqlType::Frozen(Box::new(
                arguments(self, Some(1))?.remove(0),
            ))),
            "map" => match <[CqlType; 2]>::try_from(arguments(self, Some(2))?) {
                Ok([key, value]) => Ok(CqlType::Map(Box::new(key), Box::new(value))),
                Err(_) => Err("map takes 2 type arguments".to_owned()),
            },
            "tuple" => Ok(CqlType::Tuple(arguments(self, None)?)),
            "counter" => Err(
                "counter columns are not supported: counter updates are not idempotent".to_owned(),
            ),
            "" => Err("expected a type name".to_owned()),
            other => NATIVE
                .iter()
                .find(|(known, _)| *known == other)
                .map(|(_, native)| CqlType::Native(*native))
                .ok_or_else(|| format!("unknown type {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_canonically() {
        for (text, canonical) in [
            ("TEXT", "text"),
            ("varchar", "text"),
            ("bigint", "bigint"),
            ("list< text >", "list<text>"),
            (
                "map<text,frozen<list<int>>>",
                "map<text, frozen<list<int>>>",
            ),
            ("tuple<double, double>", "tuple<double, double>"),
            ("frozen<set<uuid>>", "frozen<set<uuid>>"),
        ] {
            assert_eq!(
                CqlType::parse(text).unwrap().to_string(),
                canonical,
                "{text}"
            );
        }
    }

    #[test]
    fn knows_which_columns_can_be_keys() {
        assert!(CqlType::parse("set<text>").unwrap().is_multi_cell());
        assert!(!CqlType::parse("frozen<set<text>>").unwrap().is_multi_cell());
        assert!(!CqlType::parse("timeuuid").unwrap().is_multi_cell());
    }

    #[test]
    fn refuses_bad_types_with_the_reason() {
        let cases = [
            (
                "string",
                "invalid CQL type \"string\": unknown type \"string\"",
            ),
            (
                "counter",
                "invalid CQL type \"counter\": counter columns are not supported: counter updates are not idempotent",
            ),
            (
                "list<text",
                "invalid CQL type \"list<text\": expected '>' but the type ends",
            ),
            (
                "map<text>",
                "invalid CQL type \"map<text>\": map takes 2 type arguments",
            ),
            (
                "list<list<int>>",
                "invalid CQL type \"list<list<int>>\": a collection inside another must be frozen: write frozen<list<int>>",
            ),
            ("int>", "invalid CQL type \"int>\": unexpected \">\""),
            ("", "invalid CQL type \"\": expected a type name"),
        ];
        for (text, message) in cases {
            assert_eq!(
                CqlType::parse(text).unwrap_err().to_string(),
                message,
                "{text}"
            );
        }
    }
}
