//! The query's output rows back into one [`Outcome`] per input record: each row's value
//! columns encoded as a JSON object (nulls written, as VRL writes them), its key from
//! `_key` (or the input's), and `_error` turning its input record into a failure.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, UInt32Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{EncoderOptions, make_encoder};
use homestream_crds::streamtransform::sql::{ERROR_COLUMN, KEY_COLUMN};

use super::schema::{ROW_COLUMN, is_reserved};
use crate::program::{Input, Outcome, Output};

/// Where the parts of an output row are, found once from the plan's output schema.
#[derive(Debug, Clone)]
pub struct Layout {
    row: usize,
    key: Option<usize>,
    error: Option<usize>,
    values: Vec<usize>,
}

impl Layout {
    /// The layout of `schema`.
    ///
    /// # Errors
    /// What is wrong with the output columns, for the user: a `_key` that is not text
    /// or bytes, an `_error` that is not text, no row number (a defect of the rewrite).
    pub fn of(schema: &Schema) -> Result<Self, String> {
        let find = |name: &str| schema.index_of(name).ok();
        let row = find(ROW_COLUMN)
            .filter(|&index| schema.field(index).data_type() == &DataType::UInt32)
            .ok_or_else(|| format!("the output lost the row number {ROW_COLUMN}"))?;
        let key = find(KEY_COLUMN);
        if let Some(index) = key
            && !is_text_or_bytes(schema.field(index).data_type())
        {
            return Err(format!(
                "{KEY_COLUMN} is {}: the key must be text or bytes (CAST it to VARCHAR)",
                schema.field(index).data_type()
            ));
        }
        let error = find(ERROR_COLUMN);
        if let Some(index) = error
            && !is_text(schema.field(index).data_type())
        {
            return Err(format!(
                "{ERROR_COLUMN} is {}: the reason must be text (CAST it to VARCHAR)",
                schema.field(index).data_type()
            ));
        }
        let values = (0..schema.fields().len())
            .filter(|&index| !is_reserved(schema.field(index).name()))
            .collect();
        Ok(Self {
            row,
            key,
            error,
            values,
        })
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_text_or_bytes(data_type: &DataType) -> bool {
    is_text(data_type)
        || matches!(
            data_type,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
}

/// What the query made of each input: its rows, a failure for an `_error` or for a
/// record that did not decode (`failed`), or dropped when it left no row.
///
/// # Errors
/// When Arrow cannot encode a value column (a type without a JSON form).
pub fn outcomes(
    inputs: &[Input<'_>],
    batches: &[RecordBatch],
    layout: &Layout,
    failed: Vec<(usize, String)>,
) -> Result<Vec<Outcome>, ArrowError> {
    let mut outcomes: Vec<Outcome> = (0..inputs.len())
        .map(|_| Outcome::Aborted("the query left no row of it".to_owned()))
        .collect();
    for (index, reason) in failed {
        outcomes[index] = Outcome::Failed(reason);
    }
    let options = EncoderOptions::default().with_explicit_nulls(true);
    for batch in batches {
        let rows = batch.column(layout.row).as_primitive::<UInt32Type>();
        let values = value_struct(batch, layout)?;
        let field = Arc::new(Field::new_struct("", values.fields().clone(), false));
        let mut encoder = make_encoder(&field, &values, &options)?;
        for row in 0..batch.num_rows() {
            let index = rows.value(row) as usize;
            if let Some(reason) = layout
                .error
                .and_then(|error| text(batch.column(error), row))
            {
                outcomes[index] = Outcome::Failed(reason);
                continue;
            }
            let input_key = inputs[index].1.key;
            let key = match layout.key {
                Some(key) => {
                    bytes(batch.column(key), row).map(|key| passed_through(key, input_key))
                }
                None => input_key.map(<[u8]>::to_vec),
            };
            let mut value = Vec::with_capacity(inputs[index].0.len());
            encoder.encode(row, &mut value);
            match &mut outcomes[index] {
                Outcome::Records(records) => records.push(Output { key, value }),
                Outcome::Aborted(_) => {
                    outcomes[index] = Outcome::Records(vec![Output { key, value }])
                }
                Outcome::Failed(_) => {}
            }
        }
    }
    Ok(outcomes)
}

/// The input key's own bytes when the output key is its text unchanged (as `SELECT *`
/// passes `_key` on): a key that is not UTF-8 is read as text with replacement
/// characters, which must not replace it in the output.
fn passed_through(key: Vec<u8>, input_key: Option<&[u8]>) -> Vec<u8> {
    match input_key {
        Some(input) if key != input && String::from_utf8_lossy(input).as_bytes() == key => {
            input.to_vec()
        }
        _ => key,
    }
}

fn value_struct(batch: &RecordBatch, layout: &Layout) -> Result<StructArray, ArrowError> {
    let schema = batch.schema();
    let fields: Vec<Arc<Field>> = layout
        .values
        .iter()
        .map(|&index| Arc::new(schema.field(index).clone()))
        .collect();
    let columns = layout
        .values
        .iter()
        .map(|&index| Arc::clone(batch.column(index)))
        .collect();
    StructArray::try_new_with_length(fields.into(), columns, None, batch.num_rows())
}

fn text(column: &dyn Array, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Some(column.as_string::<i64>().value(row).to_owned()),
        DataType::Utf8View => Some(column.as_string_view().value(row).to_owned()),
        _ => None,
    }
}

fn bytes(column: &dyn Array, row: usize) -> Option<Vec<u8>> {
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Binary => Some(column.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Some(column.as_binary::<i64>().value(row).to_vec()),
        DataType::BinaryView => Some(column.as_binary_view().value(row).to_vec()),
        _ => text(column, row).map(String::into_bytes),
    }
}
