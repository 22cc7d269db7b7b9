//! The StreamTransform kind: read records from a topic, run a VRL program on each (or a
//! SQL query on each batch), and write the results to another topic.

pub mod sql;
pub mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connection::KafkaConnection;
use crate::deletion::DeletionPolicy;
use crate::topic::{OnError, TopicInput, TopicOutput};
use crate::workload::PodTemplate;

pub use sql::{SqlColumn, SqlProgram};
pub use validate::{TransformProgram, ValidatedSql, ValidatedStreamTransform};

/// Desired state of a StreamTransform.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "homestream.io",
    version = "v1alpha1",
    kind = "StreamTransform",
    namespaced,
    status = "StreamTransformStatus",
    shortname = "st",
    category = "homestream",
    doc = "A StreamTransform reads records from a Kafka topic, runs a VRL (Vector Remap Language) program on each one, or a SQL query on each batch of them, and writes the results to another topic, exactly once by default.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Whether the program compiles and the workload runs"),
    printcolumn(name = "Input", type_ = "string", json_path = ".spec.input.topic", description = "Topic the records come from"),
    printcolumn(name = "Output", type_ = "string", json_path = ".spec.output.topic.name", description = "Topic the results go to"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.readyReplicas", description = "Ready replicas"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.consumerLag", description = "Records not yet processed"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters: it is used as a label value")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.program) != has(self.sql)")
        .message("exactly one of program (VRL) and sql is required"),
    validation = Rule::new("self.output.topic.name != self.input.topic")
        .message("output.topic.name must differ from input.topic"),
    validation = Rule::new("!has(self.deadLetter) || (self.deadLetter.topic.name != self.input.topic && self.deadLetter.topic.name != self.output.topic.name)")
        .message("deadLetter.topic.name must differ from input.topic and output.topic.name"),
    validation = Rule::new("!has(self.onError) || self.onError != 'DeadLetter' || has(self.deadLetter)")
        .message("onError DeadLetter needs deadLetter"),
    validation = Rule::new("!has(self.replicas) || !has(self.input.partitions) || self.replicas <= self.input.partitions")
        .message("replicas must not exceed input.partitions: a consumer beyond the partition count would sit idle")
)]
pub struct StreamTransformSpec {
    /// The topic to read.
    pub input: TopicInput,
    /// The topic the transformed records go to.
    pub output: TopicOutput,
    /// The topic for records the program fails on, with the error and the record's
    /// origin (topic, partition, offset) in headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<TopicOutput>,
    /// The VRL program run on each record: `.` is the record (a JSON object), and the
    /// program's result is written with the same key. A program that returns an array
    /// writes one record per element; `abort` writes nothing. Functions that read the
    /// environment, the system or the network are not available. At most 64 KiB.
    /// Exactly one of `program` and `sql`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub program: Option<String>,
    /// A SQL query run on each batch of records, instead of a VRL program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlProgram>,
    /// What happens to a record the program fails on: `DeadLetter` (the default when
    /// `deadLetter` is set) or `Drop` (the default otherwise; counted in status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// Delivery guarantee: `ExactlyOnce` (the default: Kafka transactions,
    /// read-committed) or `AtLeastOnce` (faster; a restart may write a record twice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Number of pods, 1 to 256, at most the input partitions. Unset: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub replicas: Option<i32>,
    /// What happens to the output and dead-letter topics when the StreamTransform is
    /// deleted: `Retain` (the default) or `Delete` (only topics the operator created).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Kafka connection settings for this StreamTransform. Unset fields take the operator's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaConnection>,
    /// Overrides for the transformer pods (resources, scheduling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// Delivery guarantees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum Delivery {
    /// Each input record's results are written exactly once (Kafka transactions).
    #[default]
    ExactlyOnce,
    /// Results may be written again after a restart.
    AtLeastOnce,
}

/// Observed state of a StreamTransform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamTransformStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `ProgramValid`, `InputTopicReady`,
    /// `TopicReady`, `WorkloadReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pods ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Records in the input topic not yet processed by the consumer group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// Records read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_in: Option<i64>,
    /// Records written to the output topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_out: Option<i64>,
    /// Records sent to the dead-letter topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_dead_lettered: Option<i64>,
    /// Records dropped (program failed and `onError` is `Drop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_dropped: Option<i64>,
    /// Hash of the program the pods run, to tell when a change has rolled out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_hash: Option<String>,
}
