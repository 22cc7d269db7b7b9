//! Converting JSON record fields into CQL values of a column's declared type.
//!
//! Conversion is lenient where the meaning is unambiguous (a number in a string for an
//! `int`, an RFC 3339 string or epoch milliseconds for a `timestamp`) and refuses
//! anything else with a reason that goes into the dead-letter headers. Text stays
//! borrowed from the record ([`Cell::Text`]): most columns of a row are text, and
//! copying each would cost an allocation per column and record.

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike};
use homestream_crds::cql::{CqlType, NativeType};
use scylla::cluster::metadata::ColumnType;
use scylla::serialize::SerializationError;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::value::{
    CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue, CqlVarint,
};
use serde_json::Value;

use super::json::Json;

/// A converted value, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// A `text` value, borrowed from the record where it can be.
    Text(Cow<'a, str>),
    /// Any other value.
    Value(CqlValue),
}

impl Cell<'_> {
    /// The value as a [`CqlValue`], e.g. to go into a collection.
    pub fn into_cql(self) -> CqlValue {
        match self {
            Self::Text(text) => CqlValue::Text(text.into_owned()),
            Self::Value(value) => value,
        }
    }

    /// The value, owning its text.
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Self::Text(text) => Cell::Text(Cow::Owned(text.into_owned())),
            Self::Value(value) => Cell::Value(value),
        }
    }
}

impl SerializeValue for Cell<'_> {
    fn serialize<'b>(
        &self,
        typ: &ColumnType,
        writer: CellWriter<'b>,
    ) -> Result<WrittenCellProof<'b>, SerializationError> {
        match self {
            Self::Text(text) => text.serialize(typ, writer),
            Self::Value(value) => value.serialize(typ, writer),
        }
    }
}

/// A value that does not fit its column's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not a valid {cql_type}: {reason}")]
pub struct ConversionError {
    /// The value, as JSON, shortened.
    pub value: String,
    /// The column type.
    pub cql_type: String,
    /// Why.
    pub reason: String,
}

/// Converts `value` into a CQL value of type `cql_type`; JSON `null` is CQL null.
///
/// # Errors
/// When the value has the wrong shape or is out of range for the type.
pub fn convert<'a>(
    value: &Json<'a>,
    cql_type: &CqlType,
) -> Result<Option<Cell<'a>>, ConversionError> {
    if *value == Json::Null {
        return Ok(None);
    }
    let fail = |reason: &str| {
        let mut text = value.to_string();
        if text.len() > 80 {
            let cut = (0..=77)
                .rev()
                .find(|index| text.is_char_boundary(*index))
                .unwrap_or(0);
            text.truncate(cut);
            text.push_str("...");
        }
        ConversionError {
            value: text,
            cql_type: cql_type.to_string(),
            reason: reason.to_owned(),
        }
    };
    // Items of collections and tuples, which own their values.
    let item = |item: &Value, item_type: &CqlType| {
        convert(&Json::from(item), item_type).map(|cell| cell.map(Cell::into_cql))
    };
    let tree = || match value {
        Json::Tree(tree) => Some(tree.as_ref()),
        _ => None,
    };
    let converted = match cql_type {
        CqlType::Native(native) => {
            return native_value(value, *native)
                .map(Some)
                .map_err(|reason| fail(&reason));
        }
        CqlType::Frozen(inner) => return convert(value, inner),
        CqlType::List(inner) | CqlType::Set(inner) => {
            let items = tree()
                .and_then(Value::as_array)
                .ok_or_else(|| fail("expected an array"))?;
            let items = items
                .iter()
                .map(|each| item(each, inner)?.ok_or_else(|| fail("a collection cannot hold null")))
                .collect::<Result<Vec<_>, _>>()?;
            if matches!(cql_type, CqlType::Set(_)) {
                CqlValue::Set(items)
            } else {
                CqlValue::List(items)
            }
        }
        CqlType::Map(key_type, value_type) => {
            let entries = tree()
                .and_then(Value::as_object)
                .ok_or_else(|| fail("expected an object"))?;
            let entries = entries
                .iter()
                .map(|(key, each)| {
                    let key = convert(&Json::String(Cow::Borrowed(key)), key_type)?
                        .ok_or_else(|| fail("null key"))?
                        .into_cql();
                    let each =
                        item(each, value_type)?.ok_or_else(|| fail("a map cannot hold null"))?;
                    Ok((key, each))
                })
                .collect::<Result<Vec<_>, ConversionError>>()?;
            CqlValue::Map(entries)
        }
        CqlType::Tuple(types) => {
            let items = tree()
                .and_then(Value::as_array)
                .filter(|items| items.len() == types.len());
            let items = items
                .ok_or_else(|| fail(&format!("expected an array of {} items", types.len())))?;
            CqlValue::Tuple(
                items
                    .iter()
                    .zip(types)
                    .map(|(each, ty)| item(each, ty))
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    Ok(Some(Cell::Value(converted)))
}

fn native_value<'a>(value: &Json<'a>, native: NativeType) -> Result<Cell<'a>, String> {
    let value = match native {
        NativeType::Text => return text(value).map(Cell::Text),
        NativeType::Ascii => {
            let text = text(value)?;
            if !text.is_ascii() {
                return Err("not ASCII".to_owned());
            }
            CqlValue::Ascii(text.into_owned())
        }
        NativeType::Boolean => CqlValue::Boolean(match value {
            Json::Bool(flag) => *flag,
            Json::String(text) if text.eq_ignore_ascii_case("true") => true,
            Json::String(text) if text.eq_ignore_ascii_case("false") => false,
            _ => return Err("expected true or false".to_owned()),
        }),
        NativeType::Tinyint => CqlValue::TinyInt(narrow(integer(value)?)?),
        NativeType::Smallint => CqlValue::SmallInt(narrow(integer(value)?)?),
        NativeType::Int => CqlValue::Int(narrow(integer(value)?)?),
        NativeType::Bigint => CqlValue::BigInt(integer(value)?),
        NativeType::Varint => CqlValue::Varint(CqlVarint::from_signed_bytes_be(
            integer(value)?.to_be_bytes().to_vec(),
        )),
        NativeType::Double => CqlValue::Double(float(value)?),
        #[allow(clippy::cast_possible_truncation)]
        NativeType::Float => CqlValue::Float(float(value)? as f32),
        NativeType::Decimal => CqlValue::Decimal(decimal(&number_text(value)?)?),
        NativeType::Timestamp => CqlValue::Timestamp(CqlTimestamp(match value {
            Json::String(text) => DateTime::parse_from_rfc3339(text.trim())
                .map_err(|error| format!("expected RFC 3339 or epoch milliseconds: {error}"))?
                .timestamp_millis(),
            _ => integer(value)?,
        })),
        NativeType::Date => {
            let text = text(value)?;
            let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .or_else(|_| {
                    DateTime::parse_from_rfc3339(text.trim()).map(|time| time.to_utc().date_naive())
                })
                .map_err(|error| format!("expected YYYY-MM-DD: {error}"))?;
            let days = date.signed_duration_since(NaiveDate::default()).num_days();
            // CQL dates count days from 2^31 days before the epoch.
            CqlValue::Date(CqlDate(
                u32::try_from(days + (1_i64 << 31)).map_err(|_| "out of range".to_owned())?,
            ))
        }
        NativeType::Time => {
            let time = NaiveTime::parse_from_str(text(value)?.trim(), "%H:%M:%S%.f")
                .map_err(|error| format!("expected HH:MM:SS[.fff]: {error}"))?;
            CqlValue::Time(CqlTime(
                i64::from(time.num_seconds_from_midnight()) * 1_000_000_000
                    + i64::from(time.nanosecond()),
            ))
        }
        NativeType::Uuid => CqlValue::Uuid(uuid(value)?),
        NativeType::Timeuuid => {
            let uuid = uuid(value)?;
            if uuid.get_version_num() != 1 {
                return Err("not a version 1 (time-based) UUID".to_owned());
            }
            CqlValue::Timeuuid(CqlTimeuuid::from(uuid))
        }
        NativeType::Inet => CqlValue::Inet(
            text(value)?
                .trim()
                .parse::<IpAddr>()
                .map_err(|error| error.to_string())?,
        ),
        // Blobs come as text, since JSON has no bytes: the UTF-8 bytes are stored.
        NativeType::Blob => CqlValue::Blob(text(value)?.into_owned().into_bytes()),
        NativeType::Duration => CqlValue::Duration(duration(text(value)?.trim())?),
    };
    Ok(Cell::Value(value))
}

/// A string as is (borrowed if it is), and a number or boolean as its JSON text.
fn text<'a>(value: &Json<'a>) -> Result<Cow<'a, str>, String> {
    match value {
        Json::String(Cow::Borrowed(text)) => Ok(Cow::Borrowed(text)),
        Json::String(Cow::Owned(text)) => Ok(Cow::Owned(text.clone())),
        Json::Number(_) | Json::Bool(_) => Ok(Cow::Owned(value.to_string())),
        _ => Err("expected a string".to_owned()),
    }
}

fn integer(value: &Json<'_>) -> Result<i64, String> {
    match value {
        Json::Number(number) => number.as_i64().map_or_else(
            || match number.as_f64() {
                #[allow(clippy::cast_possible_truncation)]
                Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 => Ok(float as i64),
                _ => Err("expected an integer".to_owned()),
            },
            Ok,
        ),
        Json::String(text) => text
            .trim()
            .parse()
            .map_err(|_| "expected an integer".to_owned()),
        _ => Err("expected an integer".to_owned()),
    }
}

fn narrow<T: TryFrom<i64>>(value: i64) -> Result<T, String> {
    T::try_from(value).map_err(|_| "out of range".to_owned())
}

fn float(value: &Json<'_>) -> Result<f64, String> {
    match value {
        Json::Number(number) => number
            .as_f64()
            .ok_or_else(|| "expected a number".to_owned()),
        Json::String(text) => text
            .trim()
            .parse()
            .map_err(|_| "expected a number".to_owned()),
        _ => Err("expected a number".to_owned()),
    }
}

fn number_text(value: &Json<'_>) -> Result<String, String> {
    match value {
        Json::Number(number) => Ok(number.to_string()),
        Json::String(text) => Ok(text.trim().to_owned()),
        _ => Err("expected a number".to_owned()),
    }
}

/// A decimal from `-123.4500` notation (no exponent), exactly.
fn decimal(text: &str) -> Result<CqlDecimal, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = format!("{whole}{fraction}");
    let unscaled: i128 = digits
        .parse()
        .map_err(|_| "expected a decimal number such as 12.50".to_owned())?;
    let scale = i32::try_from(fraction.len()).map_err(|_| "too many digits".to_owned())?;
    let bytes = unscaled.to_be_bytes();
    // The shortest two's complement form: drop leading bytes that only repeat the sign.
    let start = (0..15)
        .find(|&index| {
            let (byte, next) = (bytes[index], bytes[index + 1]);
            !((byte == 0x00 && next & 0x80 == 0) || (byte == 0xff && next & 0x80 != 0))
        })
        .unwrap_or(15);
    Ok(CqlDecimal::from_signed_be_bytes_and_exponent(
        bytes[start..].to_vec(),
        scale,
    ))
}

fn uuid(value: &Json<'_>) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(text(value)?.trim()).map_err(|error| error.to_string())
}

/// A CQL duration literal such as `1h30m` or `2mo3d` (units `y mo w d h m s ms us ns`).
fn duration(text: &str) -> Result<CqlDuration, String> {
    let (negative, mut rest) = text
        .strip_prefix('-')
        .map_or((false, text), |rest| (true, rest));
    let (mut months, mut days, mut nanoseconds) = (0_i64, 0_i64, 0_i64);
    if rest.is_empty() {
        return Err("expected a duration such as 1h30m".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let amount: i64 = rest[..digits]
            .parse()
            .map_err(|_| "expected a number before each unit".to_owned())?;
        rest = &rest[digits..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_length].to_ascii_lowercase();
        rest = &rest[unit_length..];
        let overflow = || "out of range".to_owned();
        let scaled = |factor: i64| amount.checked_mul(factor).ok_or_else(overflow);
        match unit.as_str() {
            "y" => months += scaled(12)?,
            "mo" => months += amount,
            "w" => days += scaled(7)?,
            "d" => days += amount,
            "h" => nanoseconds += scaled(3_600_000_000_000)?,
            "m" => nanoseconds += scaled(60_000_000_000)?,
            "s" => nanoseconds += scaled(1_000_000_000)?,
            "ms" => nanoseconds += scaled(1_000_000)?,
            "us" | "µs" => nanoseconds += scaled(1_000)?,
            "ns" => nanoseconds += amount,
            other => return Err(format!("unknown unit {other:?}")),
        }
    }
    let sign = if negative { -1 } else { 1 };
    Ok(CqlDuration {
        months: narrow::<i32>(months)? * sign as i32,
        days: narrow::<i32>(days)? * sign as i32,
        nanoseconds: nanoseconds * sign,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cql(value: Value, ty: &str) -> Result<Option<CqlValue>, String> {
        convert(&Json::from(&value), &CqlType::parse(ty).unwrap())
            .map(|cell| cell.map(Cell::into_cql))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn scalars() {
        assert_eq!(
            cql(json!("WC1X"), "text"),
            Ok(Some(CqlValue::Text("WC1X".into())))
        );
        assert_eq!(
            cql(json!(90004), "text"),
            Ok(Some(CqlValue::Text("90004".into())))
        );
        assert_eq!(cql(json!("3"), "int"), Ok(Some(CqlValue::Int(3))));
        assert_eq!(cql(json!(2.0), "int"), Ok(Some(CqlValue::Int(2))));
        assert_eq!(
            cql(json!(273_000), "bigint"),
            Ok(Some(CqlValue::BigInt(273_000)))
        );
        assert_eq!(cql(json!(0.12), "double"), Ok(Some(CqlValue::Double(0.12))));
        assert_eq!(
            cql(json!("true"), "boolean"),
            Ok(Some(CqlValue::Boolean(true)))
        );
        assert_eq!(cql(json!(null), "int"), Ok(None));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(
            cql(json!("-123.45"), "decimal"),
            Ok(Some(CqlValue::Decimal(
                CqlDecimal::from_signed_be_bytes_and_exponent(vec![0xcf, 0xc7], 2)
            )))
        );
        assert_eq!(
            cql(json!(128), "decimal"),
            Ok(Some(CqlValue::Decimal(
                CqlDecimal::from_signed_be_bytes_and_exponent(vec![0x00, 0x80], 0)
            )))
        );
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(
            cql(json!("2026-05-14T09:30:00Z"), "timestamp"),
            Ok(Some(CqlValue::Timestamp(CqlTimestamp(1_778_751_000_000))))
        );
        assert_eq!(
            cql(json!(1_000), "timestamp"),
            Ok(Some(CqlValue::Timestamp(CqlTimestamp(1_000))))
        );
        assert_eq!(
            cql(json!("1970-01-02"), "date"),
            Ok(Some(CqlValue::Date(CqlDate((1 << 31) + 1))))
        );
        assert_eq!(
            cql(json!("1h30m"), "duration"),
            Ok(Some(CqlValue::Duration(CqlDuration {
                months: 0,
                days: 0,
                nanoseconds: 5_400_000_000_000
            })))
        );
    }

    #[test]
    fn collections() {
        assert_eq!(
            cql(json!(["a", "b"]), "list<text>"),
            Ok(Some(CqlValue::List(vec![
                CqlValue::Text("a".into()),
                CqlValue::Text("b".into())
            ])))
        );
        assert_eq!(
            cql(json!({"2": 10}), "map<int, bigint>"),
            Ok(Some(CqlValue::Map(vec![(
                CqlValue::Int(2),
                CqlValue::BigInt(10)
            )])))
        );
        assert_eq!(
            cql(json!([51.5, -0.12]), "frozen<tuple<double, double>>"),
            Ok(Some(CqlValue::Tuple(vec![
                Some(CqlValue::Double(51.5)),
                Some(CqlValue::Double(-0.12))
            ])))
        );
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            cql(json!("two"), "int"),
            Err("\"two\" is not a valid int: expected an integer".into())
        );
        assert_eq!(
            cql(json!(3_000_000_000_i64), "int"),
            Err("3000000000 is not a valid int: out of range".into())
        );
        assert_eq!(
            cql(json!("yes"), "boolean"),
            Err("\"yes\" is not a valid boolean: expected true or false".into())
        );
        assert!(
            cql(json!("last tuesday"), "timestamp")
                .unwrap_err()
                .contains("expected RFC 3339")
        );
        assert!(
            cql(json!(["a", null]), "list<text>")
                .unwrap_err()
                .contains("a collection cannot hold null")
        );
        assert!(cql(json!("not-a-uuid"), "uuid").is_err());
    }
}
