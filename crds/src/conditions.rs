//! Condition types that the controllers report in `status.conditions`.
//!
//! Every kind has [`READY`] (the summary that `kubectl wait` and Argo CD read),
//! [`PROGRESSING`] and [`DEGRADED`]; the others belong to the kinds named on them.

/// The resource does what its spec asks: everything it needs exists and its workload runs.
pub const READY: &str = "Ready";
/// The controller is moving the world toward the spec (creating, rolling out, scheduling).
pub const PROGRESSING: &str = "Progressing";
/// Something that used to work is failing, or the spec cannot be carried out.
pub const DEGRADED: &str = "Degraded";
/// The declared Kafka topics (output, dead letter) exist with the declared settings.
pub const TOPIC_READY: &str = "TopicReady";
/// The input topic a StreamTransform, CassandraSink or DeltaSink reads exists.
pub const INPUT_TOPIC_READY: &str = "InputTopicReady";
/// The Job, CronJob or Deployment that runs the resource is available.
pub const WORKLOAD_READY: &str = "WorkloadReady";
/// StreamTransform: the VRL program compiles; diagnostics are in the message.
pub const PROGRAM_VALID: &str = "ProgramValid";
/// CassandraSink: the keyspace and table exist and match the declared columns and keys.
pub const SCHEMA_READY: &str = "SchemaReady";
/// DeltaSink: the Delta table exists at its location with the declared columns and
/// partition columns.
pub const TABLE_READY: &str = "TableReady";
