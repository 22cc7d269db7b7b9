//! The Delta table a DeltaSink appends to: its location, columns and partition columns.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::format::jsonpath::JsonPath;
use crate::format::location::S3Location;
use crate::format::name::LakeColumnName;

/// A Delta table on S3-compatible storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.location == oldSelf.location")
        .message("table location is immutable: create a new DeltaSink to write elsewhere"),
    validation = Rule::new("has(self.partitionBy) == has(oldSelf.partitionBy) && (!has(self.partitionBy) || self.partitionBy == oldSelf.partitionBy)")
        .message("partitionBy is immutable: a Delta table's partition columns cannot change"),
    validation = Rule::new("!has(self.partitionBy) || self.partitionBy.all(p, self.columns.exists(c, c.name == p))")
        .message("every partitionBy column must be one of table.columns"),
    validation = Rule::new("!has(self.partitionBy) || self.partitionBy.all(p, self.partitionBy.filter(x, x == p).size() == 1)")
        .message("partitionBy columns must be unique"),
    validation = Rule::new("!has(self.partitionBy) || self.partitionBy.size() < self.columns.size()")
        .message("at least one column must not be a partition column: a Parquet file needs a column")
)]
pub struct LakeTable {
    /// Where the table lives, `s3://bucket/prefix`. The table's log is under
    /// `prefix/_delta_log/`. Immutable.
    pub location: S3Location,
    /// The columns, 1 to 200, names unique. Columns may be added (`schemaPolicy:
    /// AddColumns`); removing one or changing its type is refused in status.
    #[schemars(length(min = 1, max = 200))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub columns: Vec<LakeColumn>,
    /// Partition columns, in path order, at most 4: each becomes a Hive-style folder
    /// (`scraped_date=2026-12-06/`) that engines prune on. Scalar columns only; a date
    /// is the usual choice. Immutable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub partition_by: Option<Vec<LakeColumnName>>,
}

/// A column and where its value comes from in the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.field) && has(self.jsonPath))")
    .message("a column takes field or jsonPath, not both"))]
pub struct LakeColumn {
    /// Column name.
    pub name: LakeColumnName,
    /// Type, as Spark and Athena DDL write it: `string`, `long`, `int`, `double`,
    /// `float`, `boolean`, `timestamp` (an instant, from an RFC 3339 string or epoch
    /// milliseconds), `date` (from `YYYY-MM-DD`, or the UTC date of an RFC 3339
    /// timestamp: how a partition date is derived from a timestamp field),
    /// `decimal(p,s)`, `array<T>`, `map<string,T>`, `struct<name:T,...>`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 1024))]
    pub lake_type: String,
    /// Top-level record field holding the value. Unset (and no `jsonPath`): the field
    /// named like the column.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub field: Option<String>,
    /// JSONPath of the value in the record, for nested values (e.g. `$._meta.scrapedAt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPath>,
    /// Whether a record must have a value for this column: a record without one is
    /// dead-lettered. Unset: false (a missing value is written as null). Partition
    /// columns are always required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}
