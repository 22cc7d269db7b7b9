//! The CassandraSink kind: read records from a topic and upsert them as rows of a
//! Cassandra table that the operator creates and keeps in step with the spec.

pub mod table;
pub mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connection::{CassandraConnection, KafkaConnection};
use crate::deletion::DeletionPolicy;
use crate::topic::{OnError, TopicInput, TopicOutput};
use crate::workload::PodTemplate;
use table::{Keyspace, Table};

pub use crate::schema_policy::SchemaPolicy;

pub use crate::record::ColumnSource;
pub use validate::{ValidatedCassandraSink, ValidatedColumn, ValidatedReplication};

/// Desired state of a CassandraSink.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "homestream.io",
    version = "v1alpha1",
    kind = "CassandraSink",
    namespaced,
    status = "CassandraSinkStatus",
    shortname = "cs",
    // `cs` is also the built-in short name of the deprecated ComponentStatus, which
    // kubectl resolves first while the apiserver still serves it; `csink` always works.
    shortname = "csink",
    category = "homestream",
    doc = "A CassandraSink reads records from a Kafka topic and upserts each one as a row of a Cassandra table, which the operator creates from the declared columns and keys.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Whether the table exists and the workload runs"),
    printcolumn(name = "Input", type_ = "string", json_path = ".spec.input.topic", description = "Topic the records come from"),
    printcolumn(name = "Keyspace", type_ = "string", json_path = ".spec.keyspace.name", description = "Cassandra keyspace"),
    printcolumn(name = "Table", type_ = "string", json_path = ".spec.table.name", description = "Cassandra table"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.consumerLag", description = "Records not yet written"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters: it is used as a label value")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.deadLetter) || self.deadLetter.topic.name != self.input.topic")
        .message("deadLetter.topic.name must differ from input.topic"),
    validation = Rule::new("!has(self.onError) || self.onError != 'DeadLetter' || has(self.deadLetter)")
        .message("onError DeadLetter needs deadLetter"),
    validation = Rule::new("!has(self.replicas) || !has(self.input.partitions) || self.replicas <= self.input.partitions")
        .message("replicas must not exceed input.partitions: a consumer beyond the partition count would sit idle")
)]
pub struct CassandraSinkSpec {
    /// The topic to read.
    pub input: TopicInput,
    /// The keyspace of the table, created if missing (`schemaPolicy` permitting).
    pub keyspace: Keyspace,
    /// The table the rows go to.
    pub table: Table,
    /// How far the operator manages the schema: `Create` (the default: create the
    /// keyspace and table if missing, never alter them), `AddColumns` (also add
    /// declared columns the table lacks) or `Unmanaged` (only check that it matches).
    /// A removed column or a changed type is refused in status; data is never dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_policy: Option<SchemaPolicy>,
    /// Write consistency level. Unset: `LocalQuorum`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    /// Writes in flight per pod, 1 to 1024; a write is one row, or an unlogged batch
    /// of up to `batchRows` rows that one replica owns. Unset: 64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub write_concurrency: Option<i32>,
    /// Most rows one write carries, 1 to 10: the rows of records already fetched that
    /// one replica owns go as one unlogged batch. 1 writes every row on its own (for a
    /// cluster whose `unlogged_batch_across_partitions_warn_threshold` is lower than
    /// the default). Unset: 10, that default, so batches log no warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub batch_rows: Option<i32>,
    /// The topic for records that cannot become a row (missing key column, value of
    /// the wrong type), with the error and origin in headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<TopicOutput>,
    /// What happens to a record that cannot become a row: `DeadLetter` (the default
    /// when `deadLetter` is set) or `Drop` (the default otherwise; counted in `writeErrors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// Number of pods, 1 to 256, at most the input partitions. Unset: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub replicas: Option<i32>,
    /// What happens to the table and dead-letter topic when the CassandraSink is
    /// deleted: `Retain` (the default) or `Delete` (drops the table if the operator
    /// created it; never the keyspace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Kafka connection settings for this CassandraSink. Unset fields take the operator's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaConnection>,
    /// Cassandra connection settings for this CassandraSink. Unset fields take the operator's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraConnection>,
    /// Overrides for the sink pods (resources, scheduling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// Cassandra write consistency levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum Consistency {
    /// `ONE`
    One,
    /// `TWO`
    Two,
    /// `THREE`
    Three,
    /// `QUORUM`
    Quorum,
    /// `ALL`
    All,
    /// `LOCAL_ONE`
    LocalOne,
    /// `LOCAL_QUORUM`
    #[default]
    LocalQuorum,
    /// `EACH_QUORUM`
    EachQuorum,
}

/// Observed state of a CassandraSink.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraSinkStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `InputTopicReady`, `SchemaReady`, `WorkloadReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pods ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Records in the input topic not yet written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// Rows written (acknowledged by Cassandra).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_written: Option<i64>,
    /// Records that could not be written (after retries), dead-lettered or dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_errors: Option<i64>,
}
