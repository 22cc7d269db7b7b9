//! `sink` for a DeltaSink: consume the input topic and append each record, exactly
//! once, as a row of the DeltaSink's Delta table on S3.
//!
//! Records become Arrow rows ([`rows`]) that stream into Parquet files; when the flush
//! policy says (rows, bytes or the oldest record's age), one Delta commit adds the
//! files together with a `txn` action per Kafka partition holding the last offset
//! written ([`table`]). That version, not the consumer group's offset, is the truth:
//! a record at or below it is skipped (and the partition sought past it), so replays
//! after a crash, a rebalance or a lost race add nothing twice, and nothing is
//! skipped because Kafka offsets are committed only after the table commit. Storage
//! errors are retried with backoff for as long as they last ([`pipeline`]).

mod metrics;
mod pipeline;
pub mod rows;
pub mod table;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use deltalake::DeltaTable;
use homestream_common::kafka::{self, RefusedConnection};
use homestream_common::lake::{self, S3Key};
use homestream_common::shutdown::Shutdown;
use homestream_crds::DeltaSinkSpec;
use homestream_crds::runtime::{ResolvedS3, S3_ACCESS_KEY_ID_ENV, S3_SECRET_ACCESS_KEY_ENV};
use homestream_crds::topic::OnError;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;

use self::metrics::LakeMetrics;
use self::pipeline::{Backoff, DeltaPipeline};
use self::rows::Rows;
use self::table::{LakeWriter, Writers};
use super::error_chain;
use super::metrics::StreamMetrics;
use crate::config;
use crate::process::Process;

/// A DeltaSink that cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum DeltaSinkError {
    /// The runtime configuration has no S3 connection.
    #[error("the runtime configuration has no s3 section")]
    NoStorage,
    /// An S3 credential variable is missing.
    #[error("s3.authenticated is set but the environment variable {variable} is not")]
    MissingCredential {
        /// The variable the Secret should have set.
        variable: &'static str,
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
    /// Arrow's JSON decoder refuses the table's schema.
    #[error("no JSON decoder for the table's Arrow schema")]
    Decoder(#[source] deltalake::arrow::error::ArrowError),
    /// The table's schema cannot be written as Arrow rows.
    #[error("the table at {location} cannot be written: {source}")]
    Table {
        /// The table.
        location: String,
        /// The cause.
        #[source]
        source: deltalake::DeltaTableError,
    },
}

/// Runs the DeltaSink configured in `config_path` until shutdown.
///
/// # Errors
/// When the configuration is invalid, a credential is missing, the Kafka clients
/// cannot be created, Kafka refuses the credentials, or a dead-letter record cannot
/// be delivered.
pub async fn run(config_path: &Path, process: Process) -> anyhow::Result<()> {
    let config = config::load::<DeltaSinkSpec>(config_path)?;
    let spec = config
        .spec
        .validate()
        .with_context(|| format!("invalid DeltaSink spec in {}", config_path.display()))?;
    let s3 = config.s3.as_ref().ok_or(DeltaSinkError::NoStorage)?;
    let options = lake::storage_options(s3, key(s3)?.as_ref());
    let mut registry = Registry::default();
    let metrics = StreamMetrics::register(&mut registry);
    let lake_metrics = LakeMetrics::register(&mut registry);
    let process = process.serve(registry);
    let mut shutdown = process.shutdown.clone();
    let location = spec.location.as_str().to_owned();

    let Some(table) = wait_for_table(&spec.location, &options, &metrics, &mut shutdown).await
    else {
        return Ok(());
    };
    let topic = spec.input.topic.as_str().to_owned();
    let writers = Writers {
        namespace: config.resource.namespace.clone(),
        name: config.resource.name.clone(),
        topic: topic.clone(),
    };
    let lake = LakeWriter::new(table, writers).map_err(|source| DeltaSinkError::Table {
        location: location.clone(),
        source,
    })?;
    let rows = Rows::new(spec.columns.clone(), lake.arrow_schema());

    let kafka_error = |step: &str| {
        let step = step.to_owned();
        move |source| DeltaSinkError::Kafka { step, source }
    };
    let base = kafka::client_config(&config.kafka)?;
    let group = kafka::group_id(&spec.input, &config.resource);
    let rebalanced = Arc::new(AtomicBool::new(false));
    let consumer: StreamConsumer<DeltaContext> = kafka::consumer_config(&base, &group, &spec.input)
        .set("enable.auto.commit", "false")
        .create_with_context(DeltaContext {
            lag: metrics.consumer_lag.clone(),
            refused: RefusedConnection::default(),
            rebalanced: rebalanced.clone(),
        })
        .map_err(kafka_error("creating the Kafka consumer"))?;
    consumer
        .subscribe(&[topic.as_str()])
        .map_err(kafka_error(&format!("subscribing to {topic}")))?;
    let dead_letter = match (&spec.dead_letter, spec.on_error) {
        (Some(dead_letter), OnError::DeadLetter) => {
            let producer: FutureProducer = kafka::producer_config(&base)
                .create()
                .map_err(kafka_error("creating the dead-letter producer"))?;
            Some((producer, dead_letter.name.as_str().to_owned()))
        }
        _ => None,
    };
    tracing::info!(
        input = topic,
        location,
        group,
        version = lake.version(),
        "Starting the Delta sink."
    );
    let pipeline = DeltaPipeline {
        consumer,
        rebalanced,
        lake,
        rows,
        topic,
        flush: spec.flush,
        vacuum: spec.vacuum,
        dead_letter,
        metrics,
        lake_metrics,
    };
    process.readiness.set(true);
    let outcome = pipeline.run(shutdown).await;
    process.readiness.set(false);
    Ok(outcome?)
}

/// The access key from the environment when the operator set it from a Secret.
fn key(s3: &ResolvedS3) -> Result<Option<S3Key>, DeltaSinkError> {
    if !s3.authenticated {
        return Ok(None);
    }
    let variable = |variable: &'static str| {
        std::env::var(variable).map_err(|_| DeltaSinkError::MissingCredential { variable })
    };
    Ok(Some(S3Key {
        access_key_id: variable(S3_ACCESS_KEY_ID_ENV)?,
        secret_access_key: variable(S3_SECRET_ACCESS_KEY_ENV)?,
    }))
}

/// The table, once it exists (the operator creates it) and storage answers, retrying
/// with backoff meanwhile; `None` when shutdown came first.
async fn wait_for_table(
    location: &homestream_crds::format::location::S3Location,
    options: &std::collections::HashMap<String, String>,
    metrics: &StreamMetrics,
    shutdown: &mut Shutdown,
) -> Option<DeltaTable> {
    let mut backoff = Backoff::default();
    loop {
        match lake::open(location, options.clone()).await {
            Ok(Some(table)) => return Some(table),
            Ok(None) => tracing::warn!(
                location = location.as_str(),
                "There is no Delta table at the location yet (the operator creates it); waiting."
            ),
            Err(error) => {
                metrics.retries.inc();
                tracing::warn!(
                    location = location.as_str(),
                    error = error_chain(&error),
                    "The table cannot be read yet; retrying."
                );
            }
        }
        if !backoff.wait(shutdown).await {
            return None;
        }
    }
}

/// The consumer's context: lag from statistics, the connection's refusal, and a flag
/// raised by every rebalance, on which the pipeline drops what it has not committed.
struct DeltaContext {
    lag: Gauge,
    refused: RefusedConnection,
    rebalanced: Arc<AtomicBool>,
}

impl ClientContext for DeltaContext {
    fn stats(&self, statistics: Statistics) {
        kafka::record_lag(&self.lag, &statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.refused.observe(&error, reason);
    }
}

impl ConsumerContext for DeltaContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(?rebalance, "Partitions rebalanced.");
        self.rebalanced.store(true, Ordering::Release);
    }
}

/// How long the sink waits before it retries storage, doubling up to a bound.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
