//! Parsing a DeltaSink spec into [`ValidatedDeltaSink`]: column types parsed, partition
//! columns checked for types a Hive-style path can hold, flush and vacuum durations
//! bounded, defaults filled in.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration as StdDuration;

use super::table::LakeColumn;
use super::types::LakeType;
use super::{DeltaSinkSpec, FlushPolicy, Vacuum};
use crate::deletion::DeletionPolicy;
use crate::format::location::S3Location;
use crate::record::ColumnSource;
use crate::schema_policy::SchemaPolicy;
use crate::topic::{self, OnError, TopicInput, TopicSpec};
use crate::validation::{InvalidSpec, Problems};

const DEFAULT_FLUSH_ROWS: NonZeroUsize = NonZeroUsize::new(100_000).unwrap();
const DEFAULT_FLUSH_MEGABYTES: usize = 128;
const DEFAULT_FLUSH_INTERVAL: StdDuration = StdDuration::from_secs(60);
const DEFAULT_VACUUM_INTERVAL: StdDuration = StdDuration::from_secs(24 * 3600);
/// Delta's own default `deletedFileRetentionDuration`.
const DEFAULT_VACUUM_RETENTION: StdDuration = StdDuration::from_secs(7 * 24 * 3600);
const DAY: StdDuration = StdDuration::from_secs(24 * 3600);

/// A DeltaSink spec that parsed, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedDeltaSink {
    /// The topic read.
    pub input: TopicInput,
    /// Where the table lives.
    pub location: S3Location,
    /// Columns with parsed types, in the declared order.
    pub columns: Vec<ValidatedLakeColumn>,
    /// Partition column names, in path order.
    pub partition_by: Vec<String>,
    /// Schema management.
    pub schema_policy: SchemaPolicy,
    /// When buffered rows are committed.
    pub flush: ValidatedFlush,
    /// Vacuum schedule; `None` when disabled.
    pub vacuum: Option<ValidatedVacuum>,
    /// Dead-letter topic.
    pub dead_letter: Option<TopicSpec>,
    /// Failure handling.
    pub on_error: OnError,
    /// Pods.
    pub replicas: NonZeroU32,
    /// What happens to the table on deletion.
    pub deletion_policy: DeletionPolicy,
}

/// A column with its parsed type.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedLakeColumn {
    /// Column name.
    pub name: String,
    /// Its type.
    pub lake_type: LakeType,
    /// Where the value comes from.
    pub source: ColumnSource,
    /// Whether a record without a value is refused (partition columns always are).
    pub required: bool,
}

/// The first of these limits reached makes a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedFlush {
    /// Rows buffered.
    pub rows: NonZeroUsize,
    /// Bytes of record payloads buffered.
    pub bytes: usize,
    /// Age of the oldest buffered record.
    pub interval: StdDuration,
}

/// How often vacuum runs and what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedVacuum {
    /// Time between runs.
    pub interval: StdDuration,
    /// Unreferenced files younger than this stay.
    pub retention: StdDuration,
}

impl DeltaSinkSpec {
    /// Parses the spec.
    ///
    /// # Errors
    /// Every problem CEL could not catch, each with its field path.
    pub fn validate(&self) -> Result<ValidatedDeltaSink, InvalidSpec> {
        let mut problems = Problems::default();
        let partition_by: Vec<String> = self
            .table
            .partition_by
            .iter()
            .flatten()
            .map(|name| name.as_str().to_owned())
            .collect();
        let columns: Vec<ValidatedLakeColumn> = self
            .table
            .columns
            .iter()
            .filter_map(|column| self::column(column, &partition_by, &mut problems))
            .collect();
        for name in &partition_by {
            match columns.iter().find(|column| column.name == *name) {
                Some(column) if !column.lake_type.is_partitionable() => problems.push(
                    "spec.table.partitionBy",
                    format_args!(
                        "column {name} is a {}: a partition column must be a scalar",
                        column.lake_type
                    ),
                ),
                Some(_) => {}
                None if self.table.columns.iter().any(|c| c.name.as_str() == name) => {}
                None => problems.push(
                    "spec.table.partitionBy",
                    format_args!("{name} is not one of table.columns"),
                ),
            }
        }
        let flush = flush(self.flush.as_ref(), &mut problems);
        let vacuum = vacuum(self.vacuum.as_ref(), &mut problems);
        if let Some(dead_letter) = &self.dead_letter {
            topic::check_declared(&dead_letter.topic, "spec.deadLetter.topic", &mut problems);
        }
        let on_error = topic::on_error(
            self.on_error,
            self.dead_letter.is_some(),
            "spec.onError",
            &mut problems,
        );
        let replicas = topic::replicas(self.replicas, &self.input, "spec.replicas", &mut problems);
        problems.finish(|| {
            Some(ValidatedDeltaSink {
                input: self.input.clone(),
                location: self.table.location.clone(),
                columns,
                partition_by,
                schema_policy: self.schema_policy.unwrap_or_default(),
                flush: flush?,
                vacuum: vacuum?,
                dead_letter: self.dead_letter.as_ref().map(|d| d.topic.clone()),
                on_error: on_error?,
                replicas: replicas?,
                deletion_policy: self.deletion_policy.unwrap_or_default(),
            })
        })
    }
}

fn column(
    column: &LakeColumn,
    partition_by: &[String],
    problems: &mut Problems,
) -> Option<ValidatedLakeColumn> {
    let path = format!("spec.table.columns[{}]", column.name);
    let lake_type = problems.check(format!("{path}.type"), LakeType::parse(&column.lake_type));
    let source = ColumnSource::declared(
        column.name.as_str(),
        column.field.as_ref(),
        column.json_path.as_ref(),
        &path,
        problems,
    );
    let is_partition = partition_by.iter().any(|name| name == column.name.as_str());
    Some(ValidatedLakeColumn {
        name: column.name.as_str().to_owned(),
        lake_type: lake_type?,
        source: source?,
        required: is_partition || column.required.unwrap_or(false),
    })
}

fn flush(declared: Option<&FlushPolicy>, problems: &mut Problems) -> Option<ValidatedFlush> {
    let rows = declared
        .and_then(|flush| flush.rows)
        .and_then(|rows| usize::try_from(rows).ok())
        .and_then(NonZeroUsize::new)
        .unwrap_or(DEFAULT_FLUSH_ROWS);
    let megabytes = declared
        .and_then(|flush| flush.megabytes)
        .and_then(|megabytes| usize::try_from(megabytes).ok())
        .filter(|megabytes| *megabytes >= 1)
        .unwrap_or(DEFAULT_FLUSH_MEGABYTES);
    let interval = match declared.and_then(|flush| flush.interval.as_ref()) {
        Some(interval) => problems.check(
            "spec.flush.interval",
            interval.parse_within(StdDuration::from_secs(1), StdDuration::from_secs(3600)),
        )?,
        None => DEFAULT_FLUSH_INTERVAL,
    };
    Some(ValidatedFlush {
        rows,
        bytes: megabytes * 1024 * 1024,
        interval,
    })
}

/// `Some(None)` when vacuum is disabled; `None` when the spec is invalid.
fn vacuum(declared: Option<&Vacuum>, problems: &mut Problems) -> Option<Option<ValidatedVacuum>> {
    if declared.and_then(|vacuum| vacuum.enabled) == Some(false) {
        return Some(None);
    }
    let interval = match declared.and_then(|vacuum| vacuum.interval.as_ref()) {
        Some(interval) => problems.check(
            "spec.vacuum.interval",
            interval.parse_within(StdDuration::from_secs(60), 30 * DAY),
        ),
        None => Some(DEFAULT_VACUUM_INTERVAL),
    };
    let retention = match declared.and_then(|vacuum| vacuum.retention.as_ref()) {
        Some(retention) => problems.check(
            "spec.vacuum.retention",
            retention.parse_within(StdDuration::from_secs(3600), 365 * DAY),
        ),
        None => Some(DEFAULT_VACUUM_RETENTION),
    };
    Some(Some(ValidatedVacuum {
        interval: interval?,
        retention: retention?,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(table: serde_json::Value) -> DeltaSinkSpec {
        serde_json::from_value(json!({
            "input": { "topic": "listings-clean" },
            "table": table,
        }))
        .unwrap()
    }

    #[test]
    fn a_partitioned_table_validates_with_defaults() {
        let validated = spec(json!({
            "location": "s3://lake/listings",
            "columns": [
                { "name": "listing_id", "type": "string", "field": "listingId", "required": true },
                { "name": "price", "type": "decimal(12,2)" },
                { "name": "scraped_date", "type": "date", "jsonPath": "$._meta.scrapedAt" },
            ],
            "partitionBy": ["scraped_date"],
        }))
        .validate()
        .unwrap();
        assert_eq!(validated.partition_by, ["scraped_date"]);
        let required: Vec<bool> = validated.columns.iter().map(|c| c.required).collect();
        assert_eq!(required, [true, false, true]);
        assert_eq!(validated.flush.rows, DEFAULT_FLUSH_ROWS);
        assert_eq!(validated.flush.interval, DEFAULT_FLUSH_INTERVAL);
        assert_eq!(
            validated.vacuum.map(|v| v.retention),
            Some(DEFAULT_VACUUM_RETENTION)
        );
        assert_eq!(validated.on_error, OnError::Drop);
    }

    #[test]
    fn what_cel_cannot_check_is_refused_with_its_path() {
        let mut bad = spec(json!({
            "location": "s3://lake/listings",
            "columns": [
                { "name": "tags", "type": "array<string>" },
                { "name": "price", "type": "money" },
                { "name": "id", "type": "string" },
            ],
            "partitionBy": ["tags"],
        }));
        bad.flush = Some(FlushPolicy {
            rows: None,
            megabytes: None,
            interval: Some("2h".into()),
        });
        let problems = bad.validate().unwrap_err().to_string();
        assert!(
            problems.contains("spec.table.columns[price].type: unknown type \"money\""),
            "{problems}"
        );
        assert!(
            problems.contains("spec.table.partitionBy: column tags is a array<string>"),
            "{problems}"
        );
        assert!(problems.contains("spec.flush.interval"), "{problems}");
    }

    #[test]
    fn vacuum_can_be_turned_off() {
        let mut sink = spec(json!({
            "location": "s3://lake/listings",
            "columns": [{ "name": "id", "type": "string" }],
        }));
        sink.vacuum = Some(Vacuum {
            interval: None,
            retention: None,
            enabled: Some(false),
        });
        assert_eq!(sink.validate().unwrap().vacuum, None);
    }
}
