//! The operator's integration tests: one binary, run against the local stack (its apiserver, Kafka, Cassandra and S3); the operator runs as a host process or, installed by the chart, on the stack's node.

mod bench_reconcile;
mod chart;
mod delta_sink;
mod endpoints;
mod kafka_security;
mod leader;
mod lifecycle;
mod rbac;
mod status;
mod support;
mod topics;
