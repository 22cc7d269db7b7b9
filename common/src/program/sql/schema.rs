//! The table `records` a SQL program reads: the declared columns of the record's value,
//! then the columns of its origin, then the runtime's row number.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use homestream_crds::deltasink::LakeType;
use homestream_crds::streamtransform::sql::{ERROR_COLUMN, KEY_COLUMN, ORIGIN_COLUMNS};

/// The hidden column numbering the rows of a chunk, carried through every `SELECT` so
/// that each output row can be traced to its input record.
pub const ROW_COLUMN: &str = "__row";

/// The Arrow type of a declared type. Timestamps are milliseconds in UTC, as Kafka's and
/// the scraper's are; a map's keys are text.
pub fn arrow_type(sql_type: &LakeType) -> DataType {
    match sql_type {
        LakeType::String => DataType::Utf8,
        LakeType::Long => DataType::Int64,
        LakeType::Int => DataType::Int32,
        LakeType::Double => DataType::Float64,
        LakeType::Float => DataType::Float32,
        LakeType::Boolean => DataType::Boolean,
        LakeType::Timestamp => utc_milliseconds(),
        LakeType::Date => DataType::Date32,
        LakeType::Decimal { precision, scale } => {
            // Validation bounds the scale by the precision (at most 38), so it fits an i8.
            DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))
        }
        LakeType::Array(element) => {
            DataType::List(Arc::new(Field::new("item", arrow_type(element), true)))
        }
        LakeType::Map(value) => DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", arrow_type(value), true),
                ])),
                false,
            )),
            false,
        ),
        LakeType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|(name, field_type)| Field::new(name, arrow_type(field_type), true))
                .collect(),
        ),
    }
}

fn utc_milliseconds() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The columns decoded from the record's value, in declared order, all nullable.
pub fn value_schema(columns: &[(String, LakeType)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, sql_type)| Field::new(name, arrow_type(sql_type), true))
            .collect::<Vec<_>>(),
    ))
}

/// `records`: the value's columns, the origin's ([`ORIGIN_COLUMNS`]) and [`ROW_COLUMN`].
pub fn records_schema(value: &Schema) -> SchemaRef {
    let [key, topic, partition, offset, timestamp] = ORIGIN_COLUMNS;
    let mut fields: Vec<Field> = value.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend([
        Field::new(key, DataType::Utf8, true),
        Field::new(topic, DataType::Utf8, false),
        Field::new(partition, DataType::Int32, false),
        Field::new(offset, DataType::Int64, false),
        Field::new(timestamp, utc_milliseconds(), true),
        Field::new(ROW_COLUMN, DataType::UInt32, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// Whether an output column is the runtime's or the query's own (`_key`, `_error`)
/// rather than a field of the output value. The origin's columns never reach the value
/// under their own names, so `SELECT *` writes the declared fields alone.
pub fn is_reserved(name: &str) -> bool {
    name == ROW_COLUMN
        || name == KEY_COLUMN
        || name == ERROR_COLUMN
        || ORIGIN_COLUMNS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_to_arrow() {
        let parsed = |text: &str| arrow_type(&LakeType::parse(text).unwrap());
        assert_eq!(parsed("string"), DataType::Utf8);
        assert_eq!(parsed("decimal(12,2)"), DataType::Decimal128(12, 2));
        assert_eq!(parsed("timestamp"), utc_milliseconds());
        assert_eq!(
            parsed("array<long>"),
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
        );
        let DataType::Struct(fields) = parsed("struct<sourceUrl:string,n:int>") else {
            panic!()
        };
        assert_eq!(fields[0].name(), "sourceUrl");
        assert_eq!(fields[1].data_type(), &DataType::Int32);
        assert!(matches!(
            parsed("map<string,double>"),
            DataType::Map(_, false)
        ));
    }

    #[test]
    fn records_has_the_value_then_the_origin_then_the_row() {
        let value = value_schema(&[("id".to_owned(), LakeType::String)]);
        let records = records_schema(&value);
        let names: Vec<&str> = records.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "_key",
                "_topic",
                "_partition",
                "_offset",
                "_timestamp",
                "__row"
            ]
        );
        assert!(is_reserved("_offset") && is_reserved("__row") && is_reserved("_error"));
        assert!(!is_reserved("_meta"));
    }
}
