//! A StreamTransform's SQL program: one `SELECT` over the table `records`, whose columns
//! are the declared fields of the input records and the reserved columns of their origin.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::format::name::RecordFieldName;

/// The table a SQL program reads: the records of one batch.
pub const TABLE: &str = "records";

/// Columns of `records` that come from the Kafka record rather than its value, read-only.
pub const ORIGIN_COLUMNS: [&str; 5] = ["_key", "_topic", "_partition", "_offset", "_timestamp"];

/// The output column naming a row's Kafka key.
pub const KEY_COLUMN: &str = "_key";

/// The output column that sends a row's input record to the dead-letter topic, with its
/// text as the reason.
pub const ERROR_COLUMN: &str = "_error";

/// A SQL program: the query and the fields it reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlProgram {
    /// One `SELECT` over `records` (the records of a batch), with `WITH` stages and
    /// derived tables over it allowed; no joins, grouping, aggregates, window functions,
    /// ordering, `LIMIT`, `DISTINCT` or set operations. Each output row is a record of the
    /// output topic: its columns become the JSON value's fields (nulls included), except
    /// `_key` (the Kafka key: text or bytes, null for none; unselected, the input key is
    /// kept) and `_error` (non-null: the input record goes to the dead-letter topic with
    /// this reason). A record with no output row (`WHERE`) is dropped and counted. At
    /// most 64 KiB.
    #[schemars(length(min = 1, max = 65536))]
    pub query: String,
    /// The fields of the input records the query reads, as columns of `records`, 1 to
    /// 500, names unique. Other fields are not seen. Besides these, `records` has `_key` (text),
    /// `_topic`, `_partition`, `_offset` and `_timestamp` (the record's Kafka timestamp).
    #[schemars(length(min = 1, max = 500))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub columns: Vec<SqlColumn>,
}

/// A field of the input records, read as a column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlColumn {
    /// The record's top-level field, and the column's name (case kept: quote it in the
    /// query when it is not a plain lower-case word, e.g. `"listingId"`).
    pub name: RecordFieldName,
    /// Its type, as Spark and Athena DDL write it: `string` (a number or boolean in the
    /// record is read as its text), `long`, `int`, `double`, `float`, `boolean`,
    /// `timestamp` (RFC 3339 text or epoch milliseconds), `date` (`YYYY-MM-DD`),
    /// `decimal(p,s)`, `array<T>`, `map<string,T>`, `struct<name:T,...>`. A record whose
    /// field does not fit its type goes to the dead-letter topic with the reason.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 1024))]
    pub sql_type: String,
}
