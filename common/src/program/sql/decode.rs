//! A chunk of records as the batch `records`: each JSON payload decoded straight into
//! the declared columns, then the columns of its origin and its row number.
//!
//! The chunk is decoded in one pass; when that fails (one payload that is not a JSON
//! object, or a field that does not fit its type) each payload is decoded alone, so only
//! the records at fault fail, each with its reason, and the rest are decoded together.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;

use crate::program::Input;

/// The decoded records, and the reason of each record that did not decode.
pub struct Decoded {
    /// `records`, one row per decoded input; its row number is the input's index.
    pub batch: RecordBatch,
    /// `(input index, reason)` for each input that did not decode.
    pub failed: Vec<(usize, String)>,
}

/// Decodes `inputs` into `records` (`value` is the declared columns' part of it).
///
/// # Errors
/// Only when Arrow refuses the assembled batch, which would be a defect of the schema.
pub fn decode(
    inputs: &[Input<'_>],
    value: &SchemaRef,
    records: &SchemaRef,
) -> Result<Decoded, ArrowError> {
    let all: Vec<usize> = (0..inputs.len()).collect();
    let (values, rows, failed) = match decode_values(inputs, &all, value) {
        Ok(values) => (values, all, Vec::new()),
        Err(_) => one_by_one(inputs, value)?,
    };
    let mut columns = values.columns().to_vec();
    columns.extend(origin_columns(inputs, &rows));
    let batch = RecordBatch::try_new(Arc::clone(records), columns)?;
    Ok(Decoded { batch, failed })
}

/// The values of the inputs at `rows`, decoded together.
fn decode_values(
    inputs: &[Input<'_>],
    rows: &[usize],
    value: &SchemaRef,
) -> Result<RecordBatch, String> {
    let mut decoder = ReaderBuilder::new(Arc::clone(value))
        .with_batch_size(rows.len().max(1))
        // A number or boolean in a text column is read as its text, as Spark reads it.
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(|error| error.to_string())?;
    for &row in rows {
        let payload = inputs[row].0;
        let consumed = decoder.decode(payload).map_err(|error| error.to_string())?;
        // A payload is one JSON value: a truncated one, or one followed by another,
        // would shift the rows after it.
        if consumed != payload.len() || decoder.has_partial_record() {
            return Err("the payload is not one JSON value".to_owned());
        }
    }
    let batch = decoder
        .flush()
        .map_err(|error| error.to_string())?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(value)));
    if batch.num_rows() == rows.len() {
        Ok(batch)
    } else {
        Err("the payload is not one JSON object".to_owned())
    }
}

type Split = (RecordBatch, Vec<usize>, Vec<(usize, String)>);

fn one_by_one(inputs: &[Input<'_>], value: &SchemaRef) -> Result<Split, ArrowError> {
    let mut rows = Vec::with_capacity(inputs.len());
    let mut failed = Vec::new();
    for index in 0..inputs.len() {
        match decode_values(inputs, &[index], value) {
            Ok(_) => rows.push(index),
            Err(reason) => failed.push((index, format!("payload does not decode: {reason}"))),
        }
    }
    let values = if rows.is_empty() {
        RecordBatch::new_empty(Arc::clone(value))
    } else {
        // Decoding the good ones together again is cheaper than concatenating
        // hundreds of one-row batches.
        decode_values(inputs, &rows, value).map_err(ArrowError::JsonError)?
    };
    Ok((values, rows, failed))
}

/// `_key` (the key as text: invalid UTF-8 replaced), `_topic`, `_partition`, `_offset`,
/// `_timestamp` and the row number, for the inputs at `rows`.
fn origin_columns(inputs: &[Input<'_>], rows: &[usize]) -> [ArrayRef; 6] {
    let origins = || rows.iter().map(|&row| inputs[row].1);
    let keys: StringArray = origins()
        .map(|origin| origin.key.map(String::from_utf8_lossy))
        .collect();
    let topics: StringArray = origins().map(|origin| Some(origin.topic)).collect();
    let partitions: Int32Array = origins().map(|origin| origin.partition).collect();
    let offsets: Int64Array = origins().map(|origin| origin.offset).collect();
    let timestamps = TimestampMillisecondArray::from_iter(origins().map(|origin| origin.timestamp))
        .with_timezone("UTC");
    let numbers: UInt32Array = rows
        .iter()
        .map(|&row| u32::try_from(row).unwrap_or(u32::MAX))
        .collect();
    [
        Arc::new(keys),
        Arc::new(topics),
        Arc::new(partitions),
        Arc::new(offsets),
        Arc::new(timestamps),
        Arc::new(numbers),
    ]
}
