//! Column types of a Delta table, written as Spark and Athena DDL writes them
//! (`string`, `decimal(12,2)`, `array<string>`, `map<string,int>`,
//! `struct<lat:double,lon:double>`), parsed into [`LakeType`].

use std::fmt::{self, Display};

/// Largest precision of a Delta `decimal`.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// A column type of a Delta table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeType {
    /// UTF-8 text.
    String,
    /// 64-bit integer.
    Long,
    /// 32-bit integer.
    Int,
    /// 64-bit float.
    Double,
    /// 32-bit float.
    Float,
    /// `true` or `false`.
    Boolean,
    /// An instant, microseconds, adjusted to UTC.
    Timestamp,
    /// A calendar date.
    Date,
    /// Fixed-point number: precision (1 to 38) and scale (0 to precision).
    Decimal {
        /// Digits in all.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// A list of values of one type.
    Array(Box<LakeType>),
    /// A map from strings to values of one type.
    Map(Box<LakeType>),
    /// Named fields, in order.
    Struct(Vec<(String, LakeType)>),
}

/// A type that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LakeTypeError(String);

impl LakeType {
    /// Parses a type written in DDL form; spaces between tokens are allowed.
    ///
    /// # Errors
    /// When the text is not one of the types above, with what was expected where.
    pub fn parse(text: &str) -> Result<Self, LakeTypeError> {
        let mut parser = Parser {
            text: text.trim(),
            at: 0,
        };
        let parsed = parser.lake_type()?;
        parser.skip_spaces();
        if parser.at != parser.text.len() {
            return Err(parser.error("end of the type"));
        }
        Ok(parsed)
    }

    /// Whether a partition column may have this type: Hive-style paths hold scalars only.
    pub fn is_partitionable(&self) -> bool {
        !matches!(self, Self::Array(_) | Self::Map(_) | Self::Struct(_))
    }
}

impl Display for LakeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("string"),
            Self::Long => f.write_str("long"),
            Self::Int => f.write_str("int"),
            Self::Double => f.write_str("double"),
            Self::Float => f.write_str("float"),
            Self::Boolean => f.write_str("boolean"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::Date => f.write_str("date"),
            Self::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            Self::Array(element) => write!(f, "array<{element}>"),
            Self::Map(value) => write!(f, "map<string,{value}>"),
            Self::Struct(fields) => {
                f.write_str("struct<")?;
                for (index, (name, field_type)) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{field_type}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// A recursive-descent parser over the type text.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn lake_type(&mut self) -> Result<LakeType, LakeTypeError> {
        self.skip_spaces();
        let word = self.word();
        match word.to_ascii_lowercase().as_str() {
            "string" => Ok(LakeType::String),
            "long" | "bigint" => Ok(LakeType::Long),
            "int" | "integer" => Ok(LakeType::Int),
            "double" => Ok(LakeType::Double),
            "float" => Ok(LakeType::Float),
            "boolean" => Ok(LakeType::Boolean),
            "timestamp" => Ok(LakeType::Timestamp),
            "date" => Ok(LakeType::Date),
            "decimal" => self.decimal(),
            "array" => {
                self.expect('<')?;
                let element = self.lake_type()?;
                self.expect('>')?;
                Ok(LakeType::Array(Box::new(element)))
            }
            "map" => {
                self.expect('<')?;
                let key = self.lake_type()?;
                if key != LakeType::String {
                    return Err(LakeTypeError(format!(
                        "map keys must be string (JSON object keys are), not {key}"
                    )));
                }
                self.expect(',')?;
                let value = self.lake_type()?;
                self.expect('>')?;
                Ok(LakeType::Map(Box::new(value)))
            }
            "struct" => self.struct_fields(),
            "" => Err(self.error("a type")),
            other => Err(LakeTypeError(format!(
                "unknown type {other:?}: expected string, long, int, double, float, boolean, timestamp, date, decimal(p,s), array<...>, map<string,...> or struct<...>"
            ))),
        }
    }

    fn decimal(&mut self) -> Result<LakeType, LakeTypeError> {
        self.expect('(')?;
        let precision = self.number()?;
        self.expect(',')?;
        let scale = self.number()?;
        self.expect(')')?;
        if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) {
            return Err(LakeTypeError(format!(
                "decimal precision must be between 1 and {MAX_DECIMAL_PRECISION}, not {precision}"
            )));
        }
        if scale > precision {
            return Err(LakeTypeError(format!(
                "decimal scale {scale} exceeds its precision {precision}"
            )));
        }
        Ok(LakeType::Decimal { precision, scale })
    }

    fn struct_fields(&mut self) -> Result<LakeType, LakeTypeError> {
        self.expect('<')?;
        let mut fields: Vec<(String, LakeType)> = Vec::new();
        loop {
            self.skip_spaces();
            let name = self.word().to_owned();
            if name.is_empty() {
                return Err(self.error("a field name"));
            }
            if fields.iter().any(|(existing, _)| *existing == name) {
                return Err(LakeTypeError(format!("struct field {name} appears twice")));
            }
            self.expect(':')?;
            fields.push((name, self.lake_type()?));
            self.skip_spaces();
            if self.eat('>') {
                return Ok(LakeType::Struct(fields));
            }
            self.expect(',')?;
        }
    }

    fn word(&mut self) -> &str {
        let start = self.at;
        while self.text[self.at..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    fn number(&mut self) -> Result<u8, LakeTypeError> {
        self.skip_spaces();
        let digits = self.word();
        digits
            .parse()
            .map_err(|_| LakeTypeError(format!("expected a number, found {digits:?}")))
    }

    fn skip_spaces(&mut self) {
        while self.text[self.at..].starts_with(' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, expected: char) -> bool {
        self.skip_spaces();
        let found = self.text[self.at..].starts_with(expected);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, expected: char) -> Result<(), LakeTypeError> {
        if self.eat(expected) {
            Ok(())
        } else {
            Err(self.error(&format!("{expected:?}")))
        }
    }

    fn error(&self, expected: &str) -> LakeTypeError {
        let rest = &self.text[self.at..];
        let found = if rest.is_empty() {
            "the end".to_owned()
        } else {
            format!("{rest:?}")
        };
        LakeTypeError(format!(
            "expected {expected} at character {}, found {found}",
            self.at + 1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_and_nested_types_parse_and_print_back() {
        for text in [
            "string",
            "long",
            "decimal(12,2)",
            "array<string>",
            "map<string,int>",
            "struct<lat:double,lon:double>",
            "array<struct<name:string,tags:array<string>>>",
        ] {
            assert_eq!(LakeType::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(LakeType::parse("BIGINT").unwrap(), LakeType::Long);
        assert_eq!(
            LakeType::parse(" decimal( 10 , 0 ) ").unwrap(),
            LakeType::Decimal {
                precision: 10,
                scale: 0
            }
        );
    }

    #[test]
    fn bad_types_say_what_is_wrong() {
        let error = |text| LakeType::parse(text).unwrap_err().to_string();
        assert!(error("varchar").contains("unknown type \"varchar\""));
        assert!(error("decimal(40,2)").contains("between 1 and 38"));
        assert!(error("decimal(4,6)").contains("scale 6 exceeds its precision 4"));
        assert!(error("map<int,string>").contains("map keys must be string"));
        assert!(error("array<string").contains("expected '>'"));
        assert!(error("struct<a:int,a:long>").contains("appears twice"));
        assert!(error("string extra").contains("end of the type"));
    }

    #[test]
    fn only_scalars_can_partition() {
        assert!(LakeType::Date.is_partitionable());
        assert!(!LakeType::parse("array<int>").unwrap().is_partitionable());
    }
}
