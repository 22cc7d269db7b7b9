//! `sink`: consume the input topic and upsert each record as a row of the
//! CassandraSink's table.
//!
//! Each record becomes a prepared `INSERT ... USING TIMESTAMP ?` whose timestamp is
//! the Kafka record time, so replaying a record never overwrites a newer row. The
//! records already fetched go to Cassandra together, up to `batchRows` a write: the
//! rows each replica owns as one unlogged batch, sent to that replica (a lone row as a
//! plain insert), which costs a fraction of a request per row. Up to
//! `writeConcurrency` writes are in flight. Timeouts and unavailability are retried
//! with backoff for as long as it takes; a record that cannot become a row, or that
//! Cassandra refuses (its batch is then written row by row to find it), goes to the
//! dead-letter topic. An offset is stored for commit only when every record before it
//! in its partition was acknowledged by Cassandra (or dead-lettered), so a crash
//! redelivers, never skips. At start the sink waits for Cassandra, retrying with the
//! same backoff and reporting not ready, and joins its consumer group only once it
//! can write.

mod offsets;
mod outcomes;
mod pipeline;
mod row;
mod writer;

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use homestream_crds::CassandraSinkSpec;
use homestream_crds::cassandrasink::ValidatedCassandraSink;
use homestream_crds::runtime::ResolvedCassandra;
use homestream_crds::topic::OnError;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;

use self::offsets::OffsetTracker;
use self::outcomes::Outcomes;
use self::pipeline::Sink;
use self::writer::Writer;
use super::error_chain;
use super::metrics::StreamMetrics;
use crate::config;
use crate::process::Process;
use homestream_common::kafka::{self, RefusedConnection};
use homestream_common::shutdown::Shutdown;

/// First wait before retrying a write Cassandra could not take; it doubles up to
/// [`MAX_BACKOFF`], so an outage of minutes costs a retry every few seconds per write.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between retries of one write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A sink that cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The runtime configuration has no Cassandra connection.
    #[error("the runtime configuration has no cassandra section")]
    NoCassandra,
    /// A Cassandra credential variable is missing.
    #[error("cassandra.authenticated is set but the environment variable {variable} is not")]
    MissingCredential {
        /// The variable the Secret should have set.
        variable: &'static str,
    },
    /// Cassandra could not be reached or the insert could not be prepared.
    #[error("{step}")]
    Cassandra {
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Kafka client could not be created or set up.
    #[error("{step}")]
    Kafka {
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The brokers refused the credentials, or the client does not trust the brokers.
    #[error("Kafka refused the connection: {reason}")]
    Refused {
        /// librdkafka's error and reason.
        reason: String,
    },
    /// A dead-letter record was not delivered; the record will be redelivered.
    #[error(
        "delivering a record from partition {partition} offset {offset} to the dead-letter topic {topic}"
    )]
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
        /// The source partition.
        partition: i32,
        /// The source offset.
        offset: i64,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Runs the sink configured in `config_path` until shutdown.
///
/// # Errors
/// When the configuration is invalid, the Kafka clients cannot be created, Kafka
/// refuses the credentials or is not trusted, or a dead-letter record cannot be
/// delivered.
pub async fn run(config_path: &Path, process: Process) -> anyhow::Result<()> {
    let config = config::load::<CassandraSinkSpec>(config_path)?;
    let spec = config
        .spec
        .validate()
        .with_context(|| format!("invalid CassandraSink spec in {}", config_path.display()))?;
    let cassandra = config.cassandra.as_ref().ok_or(SinkError::NoCassandra)?;
    let mut registry = Registry::default();
    let metrics = StreamMetrics::register(&mut registry);
    let process = process.serve(registry);

    let kafka_error = |step: &str| {
        let step = step.to_owned();
        move |source| SinkError::Kafka { step, source }
    };
    let base = kafka::client_config(&config.kafka)?;
    let group = kafka::group_id(&spec.input, &config.resource);
    let mut shutdown = process.shutdown.clone();
    let Some(writer) = connect(cassandra, &spec, &metrics, &mut shutdown).await? else {
        return Ok(());
    };
    let consumer: StreamConsumer<SinkContext> = kafka::consumer_config(&base, &group, &spec.input)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .create_with_context(SinkContext {
            lag: metrics.consumer_lag.clone(),
            refused: RefusedConnection::default(),
        })
        .map_err(kafka_error("creating the Kafka consumer"))?;
    consumer
        .subscribe(&[spec.input.topic.as_str()])
        .map_err(kafka_error(&format!(
            "subscribing to {}",
            spec.input.topic.as_str()
        )))?;
    let dead_letter = match (&spec.dead_letter, spec.on_error) {
        (Some(topic), OnError::DeadLetter) => {
            let producer: FutureProducer = kafka::producer_config(&base)
                .create()
                .map_err(kafka_error("creating the dead-letter producer"))?;
            Some((producer, topic.name.as_str().to_owned()))
        }
        _ => None,
    };
    tracing::info!(
        input = spec.input.topic.as_str(),
        keyspace = spec.keyspace,
        table = spec.table,
        group,
        "Starting the sink."
    );
    let concurrency = usize::try_from(spec.write_concurrency.get()).unwrap_or(usize::MAX);
    let sink = Sink {
        consumer,
        writer,
        concurrency,
        batch_rows: spec.batch_rows.get(),
        outcomes: Outcomes {
            topic: spec.input.topic.as_str().to_owned(),
            dead_letter,
            metrics,
            offsets: OffsetTracker::default(),
        },
    };
    process.readiness.set(true);
    // A task of the runtime rather than the thread blocked in `main`: the driver's
    // connection tasks that a write wakes then run on the same worker thread, where
    // waking another thread per write cost about a third of the sink's CPU.
    let outcome = match tokio::spawn(sink.run(shutdown)).await {
        Ok(outcome) => outcome,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    process.readiness.set(false);
    Ok(outcome?)
}

/// Connects to Cassandra, retrying with backoff for as long as it cannot be reached
/// or the insert cannot be prepared (the table may not exist yet); `None` when
/// shutdown came first. Only a missing credential is final.
async fn connect(
    cassandra: &ResolvedCassandra,
    spec: &ValidatedCassandraSink,
    metrics: &StreamMetrics,
    shutdown: &mut Shutdown,
) -> Result<Option<Writer>, SinkError> {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        match Writer::connect(cassandra, spec, metrics.retries.clone()).await {
            Ok(writer) => return Ok(Some(writer)),
            Err(error @ SinkError::MissingCredential { .. }) => return Err(error),
            Err(error) => {
                metrics.retries.inc();
                tracing::warn!(
                    error = error_chain(&error),
                    ?backoff,
                    "Cassandra is not reachable yet; retrying."
                );
            }
        }
        tokio::select! {
            () = shutdown.requested() => return Ok(None),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The consumer's context: lag from statistics, and the connection's refusal.
struct SinkContext {
    lag: Gauge,
    refused: RefusedConnection,
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        kafka::record_lag(&self.lag, &statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.refused.observe(&error, reason);
    }
}

impl ConsumerContext for SinkContext {}
