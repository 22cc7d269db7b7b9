//! `transform`: consume the input topic in a consumer group, run the StreamTransform's
//! program (VRL on each record, or SQL on each chunk) and produce the results to the
//! output topic.
//!
//! Work goes in batches of at most [`COMMIT_RECORDS`] records or [`COMMIT_INTERVAL`].
//! With `ExactlyOnce` a batch is a Kafka transaction: results, dead-letter copies and
//! the consumed offsets commit together, and a failure aborts the transaction and
//! rewinds the consumer to the batch's first offsets. With `AtLeastOnce` a batch ends
//! by flushing the producer, and offsets are stored for commit only after every
//! result was delivered. The loop is synchronous on a blocking thread: the program is
//! CPU work, and librdkafka's calls block. Records are polled in chunks of up to
//! [`chunk_records`], run through the program on a [`Pool`] of threads, and produced
//! by this one thread in the order they were polled. A batch commits on a thread of
//! its own (see [`batch`]) while the loop polls and runs the program on the next
//! records; their results wait, and go into the next batch once the commit is done.

mod batch;
mod pipeline;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use homestream_crds::StreamTransformSpec;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;

use self::pipeline::Transform;
use super::metrics::StreamMetrics;
use crate::config;
use crate::process::{Process, Serving};
use homestream_common::kafka::{self, RefusedConnection};
use homestream_common::program::Program;

/// A batch commits after this long: the latency a result waits to become visible to
/// read-committed consumers, against one commit round trip per interval.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// A batch commits after about this many input records (checked between chunks),
/// bounding the work an abort redoes.
pub const COMMIT_RECORDS: usize = 10_000;
/// Records polled and run through a VRL program together: enough to keep every thread
/// of the pool busy for a while, few enough to hold a few hundred kilobytes.
const VRL_CHUNK_RECORDS: usize = 512;
/// The same for a SQL program, which runs a thread's part of the chunk as one batch:
/// DataFusion compiles each regular expression of the query again for every batch, so
/// larger batches amortise that (the cleaning program alone, `bench-stream program`: 9.3
/// us a record at 512, 4.9 at 4096; the transform's CPU a record halved, its peak memory
/// too), at a few megabytes a chunk.
const SQL_CHUNK_RECORDS: usize = 4096;

/// How many records are polled and run through `program` together.
pub fn chunk_records(program: &Program) -> usize {
    match program {
        Program::Vrl(_) => VRL_CHUNK_RECORDS,
        Program::Sql(_) => SQL_CHUNK_RECORDS,
    }
}
/// How long a poll waits for a record, and so how quickly shutdown is noticed.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a poll waits while a batch commits: how soon after the commit its records
/// are counted and the waiting results produced, when no records come.
const POLL_WHILE_COMMITTING: Duration = Duration::from_millis(5);
/// Bound on each transactional call and flush.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a wait for the transaction coordinator at start looks whether the brokers
/// refused the connection, which librdkafka would otherwise retry until the bound.
const REFUSAL_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// A transaction left open by a killed process blocks read-committed consumers of
/// the output until it times out, unless the same instance restarts and fences it
/// first. Batches commit every [`COMMIT_INTERVAL`], so 15 s is ample.
const TRANSACTION_TIMEOUT_MS: &str = "15000";

/// A transform that cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The program does not compile (the operator should have refused it).
    #[error("the program does not compile: {diagnostics}")]
    Program {
        /// The diagnostics, one per line.
        diagnostics: String,
    },
    /// A Kafka client could not be created or set up.
    #[error("{step}")]
    Setup {
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// A transactional call failed.
    #[error("{step} failed")]
    Transaction {
        /// The call.
        step: &'static str,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// The brokers refused the credentials, or the client does not trust the brokers.
    #[error("Kafka refused the connection: {reason}")]
    Refused {
        /// librdkafka's error and reason.
        reason: String,
    },
    /// The consumer has not joined its group yet, so offsets cannot be committed.
    #[error("the consumer has no group metadata yet")]
    NoGroupMetadata,
    /// Records of an at-least-once batch were not delivered.
    #[error("{failures} results were not delivered")]
    Delivery {
        /// How many.
        failures: u64,
    },
    /// A record could not be queued for the output or dead-letter topic.
    #[error("producing to {topic}")]
    Produce {
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: KafkaError,
    },
}

impl TransformError {
    /// Whether the producer can no longer be used (fenced by a newer instance with the
    /// same transactional id, or another fatal error): the process must exit.
    fn is_fatal(&self) -> bool {
        match self {
            Self::Transaction {
                source: KafkaError::Transaction(error),
                ..
            } => error.is_fatal(),
            Self::Setup { .. } | Self::Program { .. } | Self::Refused { .. } => true,
            _ => false,
        }
    }

    /// Whether a produce error is the result's own: larger than Kafka takes, whatever
    /// the producer's state. Any other (fenced, a fatal or abortable producer error, an
    /// unknown topic) is the producer's, and writing the record off for it would lose it.
    fn is_the_records(&self) -> bool {
        matches!(
            self,
            Self::Produce {
                source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                ..
            }
        )
    }
}

/// Runs the transform configured in `config_path` until shutdown.
///
/// # Errors
/// When the configuration is invalid, Kafka cannot be reached at start, refuses the
/// credentials or is not trusted, or the producer is fenced by another instance with
/// the same transactional id.
pub async fn run(config_path: &Path, process: Process) -> anyhow::Result<()> {
    let config = config::load::<StreamTransformSpec>(config_path)?;
    let spec = config
        .spec
        .validate()
        .with_context(|| format!("invalid StreamTransform spec in {}", config_path.display()))?;
    let program =
        Program::compile(&spec.program).map_err(|diagnostics| TransformError::Program {
            diagnostics: diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;
    let mut registry = Registry::default();
    let metrics = StreamMetrics::register(&mut registry);
    let Serving {
        readiness,
        shutdown,
        server: _server,
    } = process.serve(registry);
    let base = kafka::client_config(&config.kafka)?;
    let group = kafka::group_id(&spec.input, &config.resource);
    tracing::info!(
        input = spec.input.topic.as_str(),
        output = spec.output.name.as_str(),
        group,
        delivery = ?spec.delivery,
        program_hash = program.hash(),
        "Starting the transform."
    );
    tokio::task::spawn_blocking(move || {
        let (consumer, transform) = Transform::connect(&base, &group, spec, &program, metrics)?;
        transform.run(&consumer, &shutdown, &readiness)
    })
    .await
    .context("the transform thread panicked")??;
    Ok(())
}

/// The consumer's context: lag from statistics, a flag set when partitions are
/// revoked so the loop aborts the open batch before it processes anything else, and
/// the connection's refusal.
struct TransformContext {
    lag: Gauge,
    revoked: AtomicBool,
    refused: Arc<RefusedConnection>,
}

impl ClientContext for TransformContext {
    fn stats(&self, statistics: Statistics) {
        kafka::record_lag(&self.lag, &statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.refused.observe(&error, reason);
    }
}

impl ConsumerContext for TransformContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            self.revoked.store(true, Ordering::SeqCst);
        }
    }
}

/// The producer's context: counts failed deliveries, which fail an at-least-once batch,
/// and records the connection's refusal.
struct DeliveryContext {
    failures: AtomicU64,
    refused: Arc<RefusedConnection>,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.refused.observe(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((error, message)) = result {
            self.failures.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(%error, topic = message.topic(), "Delivery failed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce_error(source: KafkaError) -> TransformError {
        TransformError::Produce {
            topic: "out".to_owned(),
            source,
        }
    }

    #[test]
    fn only_a_result_too_large_for_kafka_is_written_off_as_the_records_fault() {
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(produce_error(too_large).is_the_records());
        for producers in [
            KafkaError::MessageProduction(RDKafkaErrorCode::Fatal),
            KafkaError::MessageProduction(RDKafkaErrorCode::State),
            KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopic),
            KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced),
        ] {
            assert!(!produce_error(producers).is_the_records());
        }
    }
}
