//! What the homestream operator and the runtime both need, so that the operator does
//! not depend on the runtime (and its browser, HTTP and Cassandra clients):
//!
//! - process plumbing: the health and metrics endpoints ([`serve`]), cooperative
//!   shutdown ([`shutdown`]) and JSON logs ([`telemetry`]);
//! - Kafka client settings, security and refusals ([`kafka`]);
//! - Delta tables on S3: storage options, schema and opening ([`lake`]);
//! - the program front ends, VRL and SQL ([`program`]): the operator compiles a program
//!   to report its diagnostics, the transform to run it.

pub mod kafka;
pub mod lake;
pub mod program;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
