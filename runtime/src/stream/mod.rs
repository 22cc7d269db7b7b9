//! Stream processing between Kafka and Kafka ([`transform`]) or Cassandra ([`sink`]).
//!
//! Both components share the dead-letter records ([`dead_letter`]) and their metrics
//! ([`metrics`]), and the Kafka plumbing of [`homestream_common::kafka`]; the transform
//! runs a VRL [`program`](homestream_common::program) on a [`pool`] of threads, the sink reads record fields ([`json`]) and
//! converts them into CQL values ([`cql`]).

pub mod cql;
pub mod dead_letter;
pub mod delta;
pub mod json;
pub mod metrics;
pub mod pool;
pub mod sink;
pub mod transform;

/// An error and its sources, joined by `: `, for logs and dead-letter headers.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
