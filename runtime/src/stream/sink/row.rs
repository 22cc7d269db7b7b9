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
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::stream::cql::{self, Cell};
use crate::stream::json::{Json, Key};

/// One row's bound values: the columns in declaration order, then the write time.
/// An absent field is left unset (the column keeps its value); `null` writes null.
pub type Row<'a> = Vec<MaybeUnset<Option<Cell<'a>>>>;

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
        let mut row = match &self.fields {
            Some(fields) => read_row(payload, fields, &self.columns)?,
            None => self.tree_row(payload)?,
        };
        if let Some(column) =
            self.columns
                .iter()
                .zip(&self.is_key)
                .zip(&row)
                .find_map(|((column, is_key), value)| {
                    (*is_key && !matches!(value, MaybeUnset::Set(Some(_)))).then_some(column)
                })
        {
            return Err(format!("key column {} is missing or null", column.name));
        }
        row.push(MaybeUnset::Set(Some(Cell::Value(CqlValue::BigInt(
            write_time_us,
        )))));
        Ok(row)
    }

    /// The row of a record some column reads with a JSONPath: the whole record
    /// becomes a tree first, and the row owns its text.
    fn tree_row(&self, payload: &[u8]) -> Result<Row<'static>, String> {
        let record: Value = serde_json::from_slice(payload)
            .map_err(|error| format!("payload is not JSON: {error}"))?;
        if !record.is_object() {
            return Err(NOT_AN_OBJECT.to_owned());
        }
        self.columns
            .iter()
            .map(|column| {
                let field = match &column.source {
                    ColumnSource::Field(name) => record.get(name),
                    ColumnSource::JsonPath(path) => path.query(&record).first(),
                };
                Ok(match field {
                    Some(field) => {
                        MaybeUnset::Set(cell(column, &Json::from(field))?.map(Cell::into_owned))
                    }
                    None => MaybeUnset::Unset,
                })
            })
            .collect()
    }
}

/// Column `column`'s value from its field.
fn cell<'a>(column: &ValidatedColumn, field: &Json<'a>) -> Result<Option<Cell<'a>>, String> {
    cql::convert(field, &column.cql_type)
        .map_err(|error| format!("column {}: {error}", column.name))
}

const NOT_AN_OBJECT: &str = "payload is not a JSON object";

/// The columns of a record whose columns all come from top-level fields, read in
/// one pass: each field is converted as it is read, and the first that does not
/// convert ends the reading.
fn read_row<'a>(
    payload: &'a [u8],
    fields: &[(String, Vec<usize>)],
    columns: &[ValidatedColumn],
) -> Result<Row<'a>, String> {
    // One UTF-8 check of the whole payload rather than one per string.
    let payload =
        std::str::from_utf8(payload).map_err(|error| format!("payload is not JSON: {error}"))?;
    let mut deserializer = serde_json::Deserializer::from_str(payload);
    let mut refusal = None;
    let row = RowSeed {
        fields,
        columns,
        refusal: &mut refusal,
    }
    .deserialize(&mut deserializer)
    .and_then(|row| deserializer.end().map(|()| row));
    row.map_err(|error| match refusal {
        Some(refusal) => refusal,
        // Every value is accepted, so a data error can only be the payload's type.
        None if error.is_data() => NOT_AN_OBJECT.to_owned(),
        None => format!("payload is not JSON: {error}"),
    })
}

/// Reads a JSON object into the columns its fields feed.
struct RowSeed<'f> {
    fields: &'f [(String, Vec<usize>)],
    columns: &'f [ValidatedColumn],
    /// Why a field did not convert, when that ended the reading.
    refusal: &'f mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Room for the write time, which the caller adds.
        let mut row = Row::with_capacity(self.columns.len() + 1);
        row.resize_with(self.columns.len(), || MaybeUnset::Unset);
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
            let value: Json<'de> = map.next_value()?;
            // A repeated field: the last one wins, as in a `serde_json` object (each
            // must convert).
            for &column in &self.fields[index].1 {
                match cell(&self.columns[column], &value) {
                    Ok(cell) => row[column] = MaybeUnset::Set(cell),
                    Err(refusal) => {
                        *self.refusal = Some(refusal);
                        return Err(A::Error::custom("a field does not convert"));
                    }
                }
            }
        }
        Ok(row)
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
