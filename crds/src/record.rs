//! Where a sink finds a column's value in a record: a top-level field or a JSONPath.

use crate::format::jsonpath::JsonPath;
use crate::validation::Problems;

/// Where a column's value is in a record.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnSource {
    /// A top-level field.
    Field(String),
    /// A JSONPath.
    JsonPath(serde_json_path::JsonPath),
}

impl ColumnSource {
    /// The source a column declares: its `field`, its `jsonPath`, else the field named
    /// like the column. `path` is the column's path in the spec, for problems.
    pub(crate) fn declared(
        column: &str,
        field: Option<&String>,
        json_path: Option<&JsonPath>,
        path: &str,
        problems: &mut Problems,
    ) -> Option<Self> {
        match (field, json_path) {
            (Some(_), Some(_)) => {
                problems.push(path, "takes field or jsonPath, not both");
                None
            }
            (None, Some(json_path)) => problems
                .check(format!("{path}.jsonPath"), json_path.parse())
                .map(Self::JsonPath),
            (Some(field), None) => Some(Self::Field(field.clone())),
            (None, None) => Some(Self::Field(column.to_owned())),
        }
    }
}
