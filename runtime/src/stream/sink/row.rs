//! A record's row: the bound values of the sink's insert, each column converted from
//! its record field into the declared CQL type.
//!
//! When every column comes from a top-level field, the payload is read once, field by
//! field, straight into the columns: fields no column names are skipped unparsed, and
//! text stays borrowed from the payload. Only a JSONPath column makes the whole record
//! a `serde_json` tree first.

use std::fmt;

use homestream_crds::cassandrasink::{ColumnSource, ValidatedCassandraSink, ValidatedColumn};
use scylla::value::{CqlValue, MaybeUnset};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::stream::cql::{self, Cell};
use crate::stream::json::{Json, Key};

/// One row's bound values: the columns in declaration order, then the write time.
/// An absent field is left unset (the column keeps its value); `null` writes null.
pub type Row<'a> = Vec<MaybeUnset<Option<Cell<'a>>>>;

/// Each column's field found in a record, in column order; `None` when absent.
type Found<'a> = Vec<Option<Json<'a>>>;

/// Turns records into rows of the sink's table.
#[derive(Debug)]
pub struct RowMapper {
    columns: Vec<ValidatedColumn>,
    /// Per column, whether it is part of the primary key, which cannot be null.
    is_key: Vec<bool>,
    /// The top-level fields the columns come from, sorted by name, with the columns
    /// each one feeds; `None` when a column has a JSONPath.
    fields: Option<Vec<(String, Vec<usize>)>>,
}

impl RowMapper {
    /// The mapping of the sink's declared columns.
    pub fn new(spec: &ValidatedCassandraSink) -> Self {
        let is_key = spec
            .columns
            .iter()
            .map(|column| {
                spec.partition_key.contains(&column.name)
                    || spec
                        .clustering_key
                        .iter()
                        .any(|(key, _)| *key == column.name)
            })
            .collect();
        let mut fields: Option<Vec<(String, Vec<usize>)>> = Some(Vec::new());
        for (index, column) in spec.columns.iter().enumerate() {
            match (&column.source, fields.as_mut()) {
                (ColumnSource::Field(name), Some(fields)) => {
                    match fields.iter_mut().find(|(field, _)| field == name) {
                        Some((_, columns)) => columns.push(index),
                        None => fields.push((name.clone(), vec![index])),
                    }
                }
                (ColumnSource::JsonPath(_), _) => fields = None,
                (ColumnSource::Field(_), None) => {}
            }
        }
        if let Some(fields) = fields.as_mut() {
            fields.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        }
        Self {
            columns: spec.columns.clone(),
            is_key,
            fields,
        }
    }

    /// The column names, in the order of the row's values.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|column| column.name.as_str())
    }

    /// The row of a record written at `write_time_us` (microseconds since the
    /// epoch), or why the record cannot be one.
    ///
    /// # Errors
    /// When the payload is not a JSON object, a field does not convert to its
    /// column's type, or a key column is missing or null.
    pub fn row<'a>(&self, payload: &'a [u8], write_time_us: i64) -> Result<Row<'a>, String> {
        match &self.fields {
            Some(fields) => {
                let found = read_fields(payload, fields, self.columns.len())?;
                self.convert(&found, write_time_us)
            }
            None => {
                let record: Value = serde_json::from_slice(payload)
                    .map_err(|error| format!("payload is not JSON: {error}"))?;
                if !record.is_object() {
                    return Err(NOT_AN_OBJECT.to_owned());
                }
                let found: Found<'_> = self
                    .columns
                    .iter()
                    .map(|column| {
                        match &column.source {
                            ColumnSource::Field(name) => record.get(name),
                            ColumnSource::JsonPath(path) => path.query(&record).first(),
                        }
                        .map(Json::from)
                    })
                    .collect();
                // The tree is dropped here: the row owns its text.
                let row = self.convert(&found, write_time_us)?;
                Ok(row
                    .into_iter()
                    .map(|value| match value {
                        MaybeUnset::Set(cell) => MaybeUnset::Set(cell.map(Cell::into_owned)),
                        MaybeUnset::Unset => MaybeUnset::Unset,
                    })
                    .collect())
            }
        }
    }

    fn convert<'a>(
        &self,
        found: &[Option<Json<'a>>],
        write_time_us: i64,
    ) -> Result<Row<'a>, String> {
        let mut row = Row::with_capacity(self.columns.len() + 1);
        for ((column, is_key), field) in self.columns.iter().zip(&self.is_key).zip(found) {
            let value = match field {
                Some(field) => cql::convert(field, &column.cql_type)
                    .map_err(|error| format!("column {}: {error}", column.name))?,
                None => None,
            };
            if *is_key && value.is_none() {
                return Err(format!("key column {} is missing or null", column.name));
            }
            row.push(if field.is_some() {
                MaybeUnset::Set(value)
            } else {
                MaybeUnset::Unset
            });
        }
        row.push(MaybeUnset::Set(Some(Cell::Value(CqlValue::BigInt(
            write_time_us,
        )))));
        Ok(row)
    }
}

const NOT_AN_OBJECT: &str = "payload is not a JSON object";

/// The fields of `payload` that feed columns, read in one pass.
fn read_fields<'a>(
    payload: &'a [u8],
    fields: &[(String, Vec<usize>)],
    columns: usize,
) -> Result<Found<'a>, String> {
    // One UTF-8 check of the whole payload rather than one per string.
    let payload =
        std::str::from_utf8(payload).map_err(|error| format!("payload is not JSON: {error}"))?;
    let mut deserializer = serde_json::Deserializer::from_str(payload);
    let found = FieldsSeed { fields, columns }
        .deserialize(&mut deserializer)
        .and_then(|found| deserializer.end().map(|()| found));
    found.map_err(|error| {
        // Every value is accepted, so a data error can only be the payload's type.
        if error.is_data() {
            NOT_AN_OBJECT.to_owned()
        } else {
            format!("payload is not JSON: {error}")
        }
    })
}

/// Reads a JSON object into the fields columns come from.
struct FieldsSeed<'f> {
    fields: &'f [(String, Vec<usize>)],
    columns: usize,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = vec![None; self.columns];
        // Records written by a program (VRL sorts object keys) or a serializer have
        // their fields in one order, so the field after the last one is tried first.
        let mut next = 0;
        while let Some(Key(key)) = map.next_key()? {
            let index = match self.fields.get(next) {
                Some((name, _)) if *name == key => Ok(next),
                _ => self
                    .fields
                    .binary_search_by(|(name, _)| name.as_str().cmp(&key)),
            };
            let Ok(index) = index else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            next = index + 1;
            // A repeated field: the last one wins, as in a `serde_json` object.
            let value: Json<'de> = map.next_value()?;
            for &column in &self.fields[index].1 {
                found[column] = Some(value.clone());
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use homestream_crds::CassandraSinkSpec;
    use serde_json::json;

    use super::*;

    fn mapper(columns: Value) -> RowMapper {
        let spec: CassandraSinkSpec = serde_json::from_value(json!({
            "input": {"topic": "in"},
            "keyspace": {"name": "ks", "replication": {"simpleStrategy": {"replicationFactor": 1}}},
            "table": {"name": "t", "columns": columns, "partitionKey": ["id"]},
        }))
        .unwrap();
        RowMapper::new(&spec.validate().unwrap())
    }

    fn flat() -> RowMapper {
        mapper(json!([
            {"name": "id", "type": "text"},
            {"name": "beds", "type": "int"},
            {"name": "tags", "type": "list<text>"},
            {"name": "copy", "type": "text", "field": "id"},
        ]))
    }

    /// A row in comparable form: `None` for unset.
    fn set(row: Row<'_>) -> Vec<Option<Option<Cell<'_>>>> {
        row.into_iter()
            .map(|value| match value {
                MaybeUnset::Set(value) => Some(value),
                MaybeUnset::Unset => None,
            })
            .collect()
    }

    fn text(value: &str) -> Option<Option<Cell<'_>>> {
        Some(Some(Cell::Text(Cow::Borrowed(value))))
    }

    fn value(value: CqlValue) -> Option<Option<Cell<'static>>> {
        Some(Some(Cell::Value(value)))
    }

    #[test]
    fn reads_the_columns_fields_and_borrows_their_text() {
        let payload = br#"{"skipped": {"deep": [1, 2]}, "id": "a-1", "beds": "3", "tags": ["x"]}"#;
        let row = set(flat().row(payload, 7).unwrap());
        assert_eq!(
            row,
            vec![
                text("a-1"),
                value(CqlValue::Int(3)),
                value(CqlValue::List(vec![CqlValue::Text("x".into())])),
                text("a-1"),
                value(CqlValue::BigInt(7)),
            ]
        );
        assert!(matches!(&row[0], Some(Some(Cell::Text(Cow::Borrowed(_))))));
    }

    #[test]
    fn absent_is_unset_and_null_is_null() {
        let row = set(flat()
            .row(br#"{"id": "a-\"1\"", "beds": null}"#, 7)
            .unwrap());
        assert_eq!(
            row,
            vec![
                text("a-\"1\""),
                Some(None),
                None,
                text("a-\"1\""),
                value(CqlValue::BigInt(7)),
            ]
        );
    }

    #[test]
    fn jsonpath_columns_read_the_whole_record() {
        let mapper = mapper(json!([
            {"name": "id", "type": "text"},
            {"name": "city", "type": "text", "jsonPath": "$.address.city"},
        ]));
        let row = mapper
            .row(br#"{"id": "a-1", "address": {"city": "Leeds"}}"#, 7)
            .unwrap();
        assert_eq!(
            set(row),
            vec![text("a-1"), text("Leeds"), value(CqlValue::BigInt(7))]
        );
    }

    #[test]
    fn refusals_say_why() {
        let refusal = |payload: &[u8]| flat().row(payload, 7).unwrap_err();
        assert_eq!(refusal(b"[1]"), "payload is not a JSON object");
        assert!(refusal(b"{\"id\": ").starts_with("payload is not JSON: "));
        assert!(refusal(b"{} x").starts_with("payload is not JSON: "));
        assert!(refusal(b"{\"id\": \"\xff\"}").starts_with("payload is not JSON: "));
        assert_eq!(
            refusal(br#"{"id": "a", "beds": "many"}"#),
            "column beds: \"many\" is not a valid int: expected an integer"
        );
        assert_eq!(
            refusal(br#"{"beds": 2}"#),
            "key column id is missing or null"
        );
        assert_eq!(
            refusal(br#"{"id": null}"#),
            "key column id is missing or null"
        );
    }
}
