//! Parsing a CassandraSink spec into [`ValidatedCassandraSink`]: CQL types parsed, key
//! columns checked for types Cassandra refuses in a primary key, the TTL made whole
//! seconds, defaults filled in.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration as StdDuration;

use super::table::{ClusteringOrder, Column, Compaction, Replication};
use super::{CassandraSinkSpec, Consistency, SchemaPolicy};
use crate::cql::{CqlType, NativeType};
use crate::deletion::DeletionPolicy;
use crate::record::ColumnSource;
use crate::topic::{self, OnError, TopicInput, TopicSpec};
use crate::validation::{InvalidSpec, Problems};

/// Cassandra refuses TTLs above 20 years.
const MAX_TTL: StdDuration = StdDuration::from_secs(20 * 365 * 24 * 3600);
const DEFAULT_WRITE_CONCURRENCY: NonZeroU32 = NonZeroU32::new(64).unwrap();
/// Most rows a write carries: Cassandra's default
/// `unlogged_batch_across_partitions_warn_threshold`, so that batches log no warning.
pub const MAX_BATCH_ROWS: NonZeroUsize = NonZeroUsize::new(10).unwrap();

/// A CassandraSink spec that parsed, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCassandraSink {
    /// The topic read.
    pub input: TopicInput,
    /// Keyspace name.
    pub keyspace: String,
    /// Keyspace replication.
    pub replication: ValidatedReplication,
    /// Table name.
    pub table: String,
    /// Columns with parsed types.
    pub columns: Vec<ValidatedColumn>,
    /// Partition key column names.
    pub partition_key: Vec<String>,
    /// Clustering columns and orders.
    pub clustering_key: Vec<(String, ClusteringOrder)>,
    /// Default TTL in whole seconds.
    pub default_time_to_live: Option<u32>,
    /// Compaction.
    pub compaction: Option<Compaction>,
    /// Table comment.
    pub comment: Option<String>,
    /// Schema management.
    pub schema_policy: SchemaPolicy,
    /// Write consistency.
    pub consistency: Consistency,
    /// Writes in flight per pod.
    pub write_concurrency: NonZeroU32,
    /// Most rows one write carries (1: no batches), at most [`MAX_BATCH_ROWS`].
    pub batch_rows: NonZeroUsize,
    /// Dead-letter topic.
    pub dead_letter: Option<TopicSpec>,
    /// Failure handling.
    pub on_error: OnError,
    /// Pods.
    pub replicas: NonZeroU32,
    /// What happens to the table on deletion.
    pub deletion_policy: DeletionPolicy,
}

/// Keyspace replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidatedReplication {
    /// `SimpleStrategy` with a factor.
    Simple(u32),
    /// `NetworkTopologyStrategy` with a factor per datacenter.
    NetworkTopology(BTreeMap<String, u32>),
}

/// A column with its parsed type.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedColumn {
    /// Column name.
    pub name: String,
    /// Its type.
    pub cql_type: CqlType,
    /// Where the value comes from.
    pub source: ColumnSource,
}

impl CassandraSinkSpec {
    /// Parses the spec.
    ///
    /// # Errors
    /// Every problem CEL could not catch, each with its field path.
    pub fn validate(&self) -> Result<ValidatedCassandraSink, InvalidSpec> {
        let mut problems = Problems::default();
        let replication = replication(&self.keyspace.replication, &mut problems);
        let columns: Vec<ValidatedColumn> = self
            .table
            .columns
            .iter()
            .filter_map(|column| self::column(column, &mut problems))
            .collect();
        let key_columns = self
            .table
            .partition_key
            .iter()
            .map(|name| ("partitionKey", name.as_str()))
            .chain(
                self.table
                    .clustering_key
                    .iter()
                    .flatten()
                    .map(|c| ("clusteringKey", c.column.as_str())),
            );
        for (key, name) in key_columns {
            match columns.iter().find(|column| column.name == name) {
                Some(column) if column.cql_type.is_multi_cell() => problems.push(
                    format_args!("spec.table.{key}"),
                    format_args!("column {name} is a {}: a key column must be a scalar or frozen collection", column.cql_type),
                ),
                Some(column) if column.cql_type == CqlType::Native(NativeType::Duration) => problems.push(
                    format_args!("spec.table.{key}"),
                    format_args!("column {name} is a duration, which Cassandra does not allow in a primary key"),
                ),
                Some(_) => {}
                None if self.table.columns.iter().any(|column| column.name.as_str() == name) => {}
                None => problems.push(format_args!("spec.table.{key}"), format_args!("{name} is not one of table.columns")),
            }
        }
        let options = self.table.options.as_ref();
        let default_time_to_live = problems.check_opt(
            "spec.table.options.defaultTimeToLive",
            options.and_then(|options| options.default_time_to_live.as_ref()),
            |ttl| {
                let ttl = ttl
                    .parse_within(StdDuration::from_secs(1), MAX_TTL)
                    .map_err(|e| e.to_string())?;
                if ttl.subsec_nanos() != 0 {
                    return Err("must be whole seconds".to_owned());
                }
                u32::try_from(ttl.as_secs()).map_err(|e| e.to_string())
            },
        );
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
            Some(ValidatedCassandraSink {
                input: self.input.clone(),
                keyspace: self.keyspace.name.as_str().to_owned(),
                replication: replication?,
                table: self.table.name.as_str().to_owned(),
                columns,
                partition_key: self
                    .table
                    .partition_key
                    .iter()
                    .map(|k| k.as_str().to_owned())
                    .collect(),
                clustering_key: self
                    .table
                    .clustering_key
                    .iter()
                    .flatten()
                    .map(|c| (c.column.as_str().to_owned(), c.order.unwrap_or_default()))
                    .collect(),
                default_time_to_live,
                compaction: options.and_then(|o| o.compaction.clone()),
                comment: options.and_then(|o| o.comment.clone()),
                schema_policy: self.schema_policy.unwrap_or_default(),
                consistency: self.consistency.unwrap_or_default(),
                write_concurrency: self
                    .write_concurrency
                    .and_then(|c| u32::try_from(c).ok())
                    .and_then(NonZeroU32::new)
                    .unwrap_or(DEFAULT_WRITE_CONCURRENCY),
                batch_rows: self
                    .batch_rows
                    .and_then(|rows| usize::try_from(rows).ok())
                    .and_then(NonZeroUsize::new)
                    .unwrap_or(MAX_BATCH_ROWS)
                    .min(MAX_BATCH_ROWS),
                dead_letter: self.dead_letter.as_ref().map(|d| d.topic.clone()),
                on_error: on_error?,
                replicas: replicas?,
                deletion_policy: self.deletion_policy.unwrap_or_default(),
            })
        })
    }
}

fn replication(replication: &Replication, problems: &mut Problems) -> Option<ValidatedReplication> {
    let factor = |value: i32| u32::try_from(value).ok().filter(|v| (1..=10).contains(v));
    match (
        &replication.simple_strategy,
        &replication.network_topology_strategy,
    ) {
        (Some(simple), None) => match factor(simple.replication_factor) {
            Some(factor) => Some(ValidatedReplication::Simple(factor)),
            None => {
                problems.push(
                    "spec.keyspace.replication.simpleStrategy.replicationFactor",
                    "must be between 1 and 10",
                );
                None
            }
        },
        (None, Some(topology)) => {
            let mut data_centers = BTreeMap::new();
            for (dc, value) in &topology.data_centers {
                match factor(*value) {
                    Some(factor) => {
                        data_centers.insert(dc.clone(), factor);
                    }
                    None => problems.push(
                        format_args!(
                            "spec.keyspace.replication.networkTopologyStrategy.dataCenters[{dc}]"
                        ),
                        "must be between 1 and 10",
                    ),
                }
            }
            Some(ValidatedReplication::NetworkTopology(data_centers))
        }
        _ => {
            problems.push(
                "spec.keyspace.replication",
                "exactly one of simpleStrategy or networkTopologyStrategy must be set",
            );
            None
        }
    }
}

fn column(column: &Column, problems: &mut Problems) -> Option<ValidatedColumn> {
    let path = format!("spec.table.columns[{}]", column.name);
    let cql_type = problems.check(format!("{path}.type"), CqlType::parse(&column.cql_type));
    let source = ColumnSource::declared(
        column.name.as_str(),
        column.field.as_ref(),
        column.json_path.as_ref(),
        &path,
        problems,
    );
    Some(ValidatedColumn {
        name: column.name.as_str().to_owned(),
        cql_type: cql_type?,
        source: source?,
    })
}
