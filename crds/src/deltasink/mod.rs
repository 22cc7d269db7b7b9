//! The DeltaSink kind: read records from a topic and append them, exactly once, as
//! rows of a Delta Lake table on S3-compatible storage, which the operator creates and
//! keeps in step with the spec and which Athena, Trino, Spark and DuckDB read.

pub mod table;
pub mod types;
pub mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::connection::{KafkaConnection, S3Connection};
use crate::deletion::DeletionPolicy;
use crate::format::duration::Duration;
use crate::schema_policy::SchemaPolicy;
use crate::topic::{OnError, TopicInput, TopicOutput};
use crate::workload::PodTemplate;
use table::LakeTable;

pub use types::LakeType;
pub use validate::{ValidatedDeltaSink, ValidatedLakeColumn};

/// Desired state of a DeltaSink.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "homestream.io",
    version = "v1alpha1",
    kind = "DeltaSink",
    namespaced,
    status = "DeltaSinkStatus",
    shortname = "dsink",
    category = "homestream",
    doc = "A DeltaSink reads records from a Kafka topic and appends them, exactly once, as rows of a Delta Lake table on S3-compatible storage, which the operator creates from the declared columns.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Whether the table exists and the workload runs"),
    printcolumn(name = "Input", type_ = "string", json_path = ".spec.input.topic", description = "Topic the records come from"),
    printcolumn(name = "Location", type_ = "string", json_path = ".spec.table.location", description = "Where the Delta table lives"),
    printcolumn(name = "Version", type_ = "integer", json_path = ".status.tableVersion", description = "Latest version of the table"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.consumerLag", description = "Records not yet committed"),
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
pub struct DeltaSinkSpec {
    /// The topic to read.
    pub input: TopicInput,
    /// The table the rows go to.
    pub table: LakeTable,
    /// How far the operator manages the table: `Create` (the default: create it if
    /// missing, never alter it), `AddColumns` (also add declared columns the table
    /// lacks) or `Unmanaged` (only check that it matches). A removed column or a
    /// changed type is refused in status; data is never dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_policy: Option<SchemaPolicy>,
    /// When buffered rows become a commit: whichever limit comes first. Fewer, larger
    /// commits mean fewer, larger files, which engines read faster; more frequent ones
    /// mean fresher data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush: Option<FlushPolicy>,
    /// Removal of files no version of the table refers to any more (replaced files,
    /// and files of commits that failed), by the pod that reads the input's partition 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vacuum: Option<Vacuum>,
    /// The topic for records that cannot become a row (a value that does not convert
    /// to its column's type, a missing required value), with the error and origin in
    /// headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<TopicOutput>,
    /// What happens to a record that cannot become a row: `DeadLetter` (the default
    /// when `deadLetter` is set) or `Drop` (the default otherwise; counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// Number of pods, 1 to 256, at most the input partitions. Unset: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub replicas: Option<i32>,
    /// What happens to the table and dead-letter topic when the DeltaSink is deleted:
    /// `Retain` (the default) or `Delete` (deletes the table's files if the operator
    /// created the table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Kafka connection settings for this DeltaSink. Unset fields take the operator's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaConnection>,
    /// S3 connection settings for this DeltaSink. Unset fields take the operator's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<S3Connection>,
    /// Overrides for the sink pods (resources, scheduling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// When buffered rows are committed: the first limit reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlushPolicy {
    /// Rows per commit, 1 to 10 000 000. Unset: 100 000.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub rows: Option<i32>,
    /// Bytes of records per commit, in MiB, 1 to 1024. Unset: 128.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub megabytes: Option<i32>,
    /// Longest a record waits for its commit, 1s to 1h, e.g. `30s`. Unset: `60s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// Vacuum on a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vacuum {
    /// How often, 1m to 30 days. Unset: `24h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long an unreferenced file is kept before it is removed, so that readers of
    /// older versions (time travel, long queries) still find it; 1h to 365 days.
    /// Unset: `168h`, Delta's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
    /// Whether vacuum runs at all. Unset: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Observed state of a DeltaSink.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeltaSinkStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `InputTopicReady`, `TableReady`, `WorkloadReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pods ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Records in the input topic not yet committed to the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// Latest version of the table's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_version: Option<i64>,
    /// When that version was committed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_commit_time: Option<String>,
    /// Rows in the table's current version, from the files' statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    /// Data files in the table's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<i64>,
}
