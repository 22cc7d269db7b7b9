//! Records to Arrow rows: each record's column values are picked out ([`Rows::project`])
//! and put in the form Arrow's JSON decoder reads for the column's type, then a chunk of
//! them is decoded against the table's Arrow schema ([`Rows::decode`]). A record whose
//! values do not convert is found and reported alone, so the rest of its chunk goes on.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::arrow::datatypes::Schema;
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::json::ReaderBuilder;
use deltalake::arrow::record_batch::RecordBatch;
use homestream_crds::deltasink::{LakeType, ValidatedLakeColumn};
use homestream_crds::record::ColumnSource;
use serde_json::{Map, Value};

/// A record's column values, by column name, ready for the decoder.
pub type Projected = Map<String, Value>;

/// Rows that converted, as one batch (none when no row did), and each row that did
/// not: its index among the rows decoded, and why.
pub type Decoded = (Option<RecordBatch>, Vec<(usize, String)>);

/// How a DeltaSink turns records into rows of its table.
#[derive(Debug, Clone)]
pub struct Rows {
    columns: Vec<ValidatedLakeColumn>,
    schema: Arc<Schema>,
}

impl Rows {
    /// Rows of `schema` (the table's Arrow schema) from records holding `columns`.
    pub fn new(columns: Vec<ValidatedLakeColumn>, schema: Arc<Schema>) -> Self {
        Self { columns, schema }
    }

    /// The column values of a record, or why it cannot be a row.
    ///
    /// # Errors
    /// When the payload is not a JSON object, a required column has no value, or a
    /// timestamp or date is not in a form this sink reads.
    pub fn project(&self, payload: &[u8]) -> Result<Projected, String> {
        let record: Value = serde_json::from_slice(payload)
            .map_err(|error| format!("payload is not JSON: {error}"))?;
        if !record.is_object() {
            return Err("payload is not a JSON object".to_owned());
        }
        let mut row = Map::with_capacity(self.columns.len());
        for column in &self.columns {
            let value = match &column.source {
                ColumnSource::Field(name) => record.get(name),
                ColumnSource::JsonPath(path) => path.query(&record).first(),
            };
            match value {
                None | Some(Value::Null) if column.required => {
                    return Err(format!("required column {} has no value", column.name));
                }
                None | Some(Value::Null) => {}
                Some(value) => {
                    let value = normalized(&column.lake_type, value)
                        .map_err(|reason| format!("column {}: {reason}", column.name))?;
                    row.insert(column.name.clone(), value);
                }
            }
        }
        Ok(row)
    }

    /// The rows as one batch, and each row that did not convert (its index in `rows`
    /// and why). The batch holds the rows that converted, in order.
    ///
    /// # Errors
    /// Only when the decoder cannot be built for the schema, which the table's schema
    /// always allows.
    pub fn decode(&self, rows: &[Projected]) -> Result<Decoded, ArrowError> {
        match self.decode_all(rows) {
            Ok(batch) => Ok((batch, Vec::new())),
            // Rare: find the rows at fault one by one, then decode the others together.
            Err(_) => {
                let mut good = Vec::with_capacity(rows.len());
                let mut bad = Vec::new();
                for (index, row) in rows.iter().enumerate() {
                    match self.decode_all(std::slice::from_ref(row)) {
                        Ok(_) => good.push(row.clone()),
                        Err(error) => bad.push((index, error.to_string())),
                    }
                }
                Ok((self.decode_all(&good)?, bad))
            }
        }
    }

    fn decode_all(&self, rows: &[Projected]) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows.len().max(1))
            .with_coerce_primitive(true)
            .build_decoder()?;
        decoder.serialize(rows)?;
        decoder.flush()
    }
}

/// `value` in the form the decoder reads for `lake_type`: timestamps as RFC 3339 text or
/// epoch microseconds, dates as `YYYY-MM-DD`. Other types go as they are; the decoder
/// checks them.
fn normalized(lake_type: &LakeType, value: &Value) -> Result<Value, String> {
    match (lake_type, value) {
        (LakeType::Timestamp, Value::Number(number)) => {
            let millis = number
                .as_i64()
                .ok_or_else(|| format!("{number} is not a whole number of epoch milliseconds"))?;
            Ok(Value::from(millis.saturating_mul(1000)))
        }
        (LakeType::Date, Value::String(text)) if text.len() > 10 => {
            let instant = DateTime::parse_from_rfc3339(text).map_err(|error| {
                format!("{text:?} is neither a date nor an RFC 3339 timestamp: {error}")
            })?;
            Ok(Value::from(
                instant.with_timezone(&Utc).date_naive().to_string(),
            ))
        }
        (LakeType::Date, Value::Number(number)) => {
            let date = number
                .as_i64()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| format!("{number} is not epoch milliseconds"))?;
            Ok(Value::from(date.date_naive().to_string()))
        }
        (LakeType::Date, Value::String(text)) => {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|error| format!("{text:?} is not a date: {error}"))?;
            Ok(value.clone())
        }
        _ => Ok(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{DataType, Date32Type, Field, TimeUnit};
    use homestream_crds::record::ColumnSource;
    use serde_json::json;

    use super::*;

    fn column(
        name: &str,
        lake_type: &str,
        source: ColumnSource,
        required: bool,
    ) -> ValidatedLakeColumn {
        ValidatedLakeColumn {
            name: name.to_owned(),
            lake_type: LakeType::parse(lake_type).unwrap(),
            source,
            required,
        }
    }

    fn rows() -> Rows {
        let columns = vec![
            column(
                "id",
                "string",
                ColumnSource::Field("listingId".into()),
                true,
            ),
            column(
                "price",
                "decimal(12,2)",
                ColumnSource::Field("price".into()),
                false,
            ),
            column(
                "scraped_at",
                "timestamp",
                ColumnSource::JsonPath(
                    serde_json_path::JsonPath::parse("$._meta.scrapedAt").unwrap(),
                ),
                false,
            ),
            column(
                "scraped_date",
                "date",
                ColumnSource::JsonPath(
                    serde_json_path::JsonPath::parse("$._meta.scrapedAt").unwrap(),
                ),
                true,
            ),
        ];
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("price", DataType::Decimal128(12, 2), true),
            Field::new(
                "scraped_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("scraped_date", DataType::Date32, true),
        ]);
        Rows::new(columns, Arc::new(schema))
    }

    fn record(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn a_record_becomes_a_typed_row_with_its_partition_date() {
        let rows = rows();
        let projected = rows
            .project(&record(json!({
                "listingId": 42,
                "price": "450000.50",
                "_meta": { "scrapedAt": "2026-12-06T23:30:00-02:00" },
            })))
            .unwrap();
        let (batch, bad) = rows.decode(&[projected]).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        let batch = batch.unwrap();
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "42");
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<deltalake::arrow::datatypes::Decimal128Type>()
                .value(0),
            45_000_050
        );
        let date = batch
            .column(3)
            .as_primitive::<Date32Type>()
            .value_as_date(0)
            .unwrap();
        assert_eq!(
            date.to_string(),
            "2026-12-07",
            "the UTC date of the timestamp"
        );
        assert!(batch.column(2).is_valid(0));
    }

    #[test]
    fn bad_records_are_refused_alone_with_the_reason() {
        let rows = rows();
        let good = json!({ "listingId": "a", "_meta": { "scrapedAt": "2026-12-06T10:00:00Z" } });
        assert_eq!(
            rows.project(&record(json!({ "price": 1 }))).unwrap_err(),
            "required column id has no value"
        );
        assert!(
            rows.project(b"[1]")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            rows.project(&record(
                json!({ "listingId": "b", "_meta": { "scrapedAt": "yesterday" } })
            ))
            .unwrap_err()
            .starts_with("column scraped_date: \"yesterday\" is not a date")
        );
        let wrong_price = rows
            .project(&record(json!({ "listingId": "c", "price": "lots", "_meta": { "scrapedAt": "2026-12-06" } })))
            .unwrap();
        let projected = vec![
            rows.project(&record(good.clone())).unwrap(),
            wrong_price,
            rows.project(&record(good)).unwrap(),
        ];
        let (batch, bad) = rows.decode(&projected).unwrap();
        assert_eq!(batch.unwrap().num_rows(), 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 1);
        assert!(bad[0].1.contains("lots"), "{}", bad[0].1);
    }
}
