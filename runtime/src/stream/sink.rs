//! `sink`: consume the input topic and upsert each record as a row of the
//! CassandraSink's table.
//!
//! Each record becomes a prepared `INSERT ... USING TIMESTAMP ?` whose timestamp is
//! the Kafka record time, so replaying a record never overwrites a newer row. Up to
//! `writeConcurrency` writes are in flight; the driver routes each to a replica of
//! its token. Timeouts and unavailability are retried with backoff for as long as it
//! takes; a record that cannot become a row goes to the dead-letter topic. An offset
//! is stored for commit only when every record before it in its partition was
//! acknowledged by Cassandra (or dead-lettered), so a crash redelivers, never skips.
//! At start the sink waits for Cassandra, retrying with the same backoff and
//! reporting not ready, and joins its consumer group only once it can write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use homestream_crds::CassandraSinkSpec;
use homestream_crds::cassandrasink::{
    ColumnSource, Consistency, ValidatedCassandraSink, ValidatedColumn,
};
use homestream_crds::runtime::{CASSANDRA_PASSWORD_ENV, CASSANDRA_USERNAME_ENV, ResolvedCassandra};
use homestream_crds::topic::OnError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, MaybeUnset};

use super::metrics::StreamMetrics;
use super::{cql, dead_letter, error_chain, kafka};
use crate::config;
use crate::process::Process;
use crate::shutdown::Shutdown;

/// First wait before retrying a write Cassandra could not take; it doubles up to
/// [`MAX_BACKOFF`], so an outage of minutes costs a retry every few seconds per write.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between retries of one write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Driver-side bound on one write attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often acknowledged offsets are handed to the consumer, which commits them
/// every second: often enough that a restart redoes little.
const STORE_INTERVAL: Duration = Duration::from_millis(200);
/// Bound on delivering a dead-letter record.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);

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
/// When the configuration is invalid, the Kafka clients cannot be created, or a
/// dead-letter record cannot be delivered.
pub async fn run(config_path: &Path, process: Process) -> anyhow::Result<()> {
    let config = config::load::<CassandraSinkSpec>(config_path)?;
    let spec = config
        .spec
        .validate()
        .with_context(|| format!("invalid CassandraSink spec in {}", config_path.display()))?;
    let cassandra = config.cassandra.as_ref().ok_or(SinkError::NoCassandra)?;
    let mut registry = Registry::default();
    let metrics = StreamMetrics::register(&mut registry);
    let _server = process.serve(registry);

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
    let writer = Arc::new(writer);
    tracing::info!(
        input = spec.input.topic.as_str(),
        keyspace = spec.keyspace,
        table = spec.table,
        group,
        "Starting the sink."
    );
    let concurrency = usize::try_from(spec.write_concurrency.get()).unwrap_or(usize::MAX);
    let topic = spec.input.topic.as_str().to_owned();
    let sink = Sink {
        topic,
        consumer,
        writer,
        dead_letter,
        metrics,
        concurrency,
        offsets: OffsetTracker::default(),
    };
    process.readiness.set(true);
    let outcome = sink.run(shutdown).await;
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

/// The consumer's context: lag from statistics.
struct SinkContext {
    lag: Gauge,
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        kafka::record_lag(&self.lag, &statistics);
    }
}

impl ConsumerContext for SinkContext {}

/// One row's bound values: the columns in declaration order, then the write time.
/// An absent field is left unset (the column keeps its value); `null` writes null.
type Row = Vec<MaybeUnset<Option<CqlValue>>>;

/// The Cassandra side: a session and the prepared insert.
struct Writer {
    session: Session,
    insert: PreparedStatement,
    columns: Vec<ValidatedColumn>,
    is_key: Vec<bool>,
    retries: Counter,
}

impl Writer {
    async fn connect(
        cassandra: &ResolvedCassandra,
        spec: &ValidatedCassandraSink,
        retries: Counter,
    ) -> Result<Self, SinkError> {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(datacenter) = &cassandra.local_datacenter {
            policy = policy.prefer_datacenter(datacenter.clone());
        }
        let profile = ExecutionProfile::builder()
            .consistency(consistency(spec.consistency))
            .load_balancing_policy(policy.build())
            .request_timeout(Some(REQUEST_TIMEOUT))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&cassandra.contact_points)
            .default_execution_profile_handle(profile.into_handle());
        if cassandra.authenticated {
            let credential = |variable: &'static str| {
                std::env::var(variable).map_err(|_| SinkError::MissingCredential { variable })
            };
            builder = builder.user(
                credential(CASSANDRA_USERNAME_ENV)?,
                credential(CASSANDRA_PASSWORD_ENV)?,
            );
        }
        let session = builder
            .build()
            .await
            .map_err(|source| SinkError::Cassandra {
                step: format!(
                    "connecting to Cassandra at {}",
                    cassandra.contact_points.join(",")
                ),
                source: Box::new(source),
            })?;
        let names: Vec<&str> = spec
            .columns
            .iter()
            .map(|column| column.name.as_str())
            .collect();
        let statement = format!(
            "INSERT INTO {}.{} ({}) VALUES ({}) USING TIMESTAMP ?",
            spec.keyspace,
            spec.table,
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        );
        let insert = session
            .prepare(statement.as_str())
            .await
            .map_err(|source| SinkError::Cassandra {
                step: format!("preparing {statement}"),
                source: Box::new(source),
            })?;
        let is_key = spec
            .columns
            .iter()
            .map(|column| {
                spec.partition_key.contains(&column.name)
                    || spec
                        .clustering_key
                        .iter()
                        .any(|(key, _)| *key == column.name)
            })
            .collect();
        Ok(Self {
            session,
            insert,
            columns: spec.columns.clone(),
            is_key,
            retries,
        })
    }

    /// The row of a record, or why it cannot be one.
    fn row(&self, payload: Option<&[u8]>, timestamp_ms: Option<i64>) -> Result<Row, String> {
        let record: serde_json::Value = serde_json::from_slice(payload.unwrap_or_default())
            .map_err(|error| format!("payload is not JSON: {error}"))?;
        if !record.is_object() {
            return Err("payload is not a JSON object".to_owned());
        }
        let mut row = Row::with_capacity(self.columns.len() + 1);
        for (column, is_key) in self.columns.iter().zip(&self.is_key) {
            let field = match &column.source {
                ColumnSource::Field(name) => record.get(name),
                ColumnSource::JsonPath(path) => path.query(&record).first(),
            };
            let value = match field {
                Some(field) => cql::convert(field, &column.cql_type)
                    .map_err(|error| format!("column {}: {error}", column.name))?,
                None => None,
            };
            if *is_key && value.is_none() {
                return Err(format!("key column {} is missing or null", column.name));
            }
            row.push(if field.is_some() {
                MaybeUnset::Set(value)
            } else {
                MaybeUnset::Unset
            });
        }
        let write_time_ms = timestamp_ms.unwrap_or_else(now_ms);
        row.push(MaybeUnset::Set(Some(CqlValue::BigInt(
            write_time_ms.saturating_mul(1000),
        ))));
        Ok(row)
    }

    /// Writes a row, retrying what Cassandra may take later; `Err` is a record error.
    async fn write(&self, row: &Row) -> Result<(), String> {
        let mut backoff = INITIAL_BACKOFF;
        loop {
            match self.session.execute_unpaged(&self.insert, row).await {
                Ok(_) => return Ok(()),
                Err(error) if is_record_error(&error) => return Err(error_chain(&error)),
                Err(error) => {
                    self.retries.inc();
                    tracing::warn!(
                        error = error_chain(&error),
                        ?backoff,
                        "Write failed; retrying."
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Errors that retrying cannot fix because they are the record's: a value the
/// driver cannot serialize for the column, or a request Cassandra calls invalid (a
/// value too large, say). Everything else (timeouts, unavailable, overloaded,
/// connection loss) is retried.
fn is_record_error(error: &ExecutionError) -> bool {
    matches!(
        error,
        ExecutionError::BadQuery(_)
            | ExecutionError::LastAttemptError(
                RequestAttemptError::SerializationError(_)
                    | RequestAttemptError::CqlRequestSerialization(_)
                    | RequestAttemptError::DbError(DbError::Invalid, _)
            )
    )
}

fn consistency(consistency: Consistency) -> scylla::statement::Consistency {
    use scylla::statement::Consistency as Cql;
    match consistency {
        Consistency::One => Cql::One,
        Consistency::Two => Cql::Two,
        Consistency::Three => Cql::Three,
        Consistency::Quorum => Cql::Quorum,
        Consistency::All => Cql::All,
        Consistency::LocalOne => Cql::LocalOne,
        Consistency::LocalQuorum => Cql::LocalQuorum,
        Consistency::EachQuorum => Cql::EachQuorum,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |now| i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
}

/// Per partition, the offsets in flight and the highest one done: everything below
/// the lowest in flight is done, so that is the offset to commit.
#[derive(Default)]
struct OffsetTracker {
    partitions: BTreeMap<i32, (BTreeSet<i64>, i64)>,
    to_store: BTreeMap<i32, i64>,
}

impl OffsetTracker {
    fn start(&mut self, partition: i32, offset: i64) {
        self.partitions
            .entry(partition)
            .or_insert_with(|| (BTreeSet::new(), -1))
            .0
            .insert(offset);
    }

    fn finish(&mut self, partition: i32, offset: i64) {
        let Some((in_flight, highest_done)) = self.partitions.get_mut(&partition) else {
            return;
        };
        in_flight.remove(&offset);
        *highest_done = (*highest_done).max(offset);
        let next = in_flight.first().copied().unwrap_or(*highest_done + 1);
        self.to_store.insert(partition, next);
    }

    fn take(&mut self, topic: &str) -> Option<TopicPartitionList> {
        if self.to_store.is_empty() {
            return None;
        }
        let mut offsets = TopicPartitionList::with_capacity(self.to_store.len());
        for (partition, next) in std::mem::take(&mut self.to_store) {
            // Cannot fail: the offset is a plain number.
            let _ = offsets.add_partition_offset(topic, partition, Offset::Offset(next));
        }
        Some(offsets)
    }
}

/// A finished write: the record, when it was received, and the outcome.
struct Done {
    message: OwnedMessage,
    received: Instant,
    outcome: Result<(), String>,
}

struct Sink {
    topic: String,
    consumer: StreamConsumer<SinkContext>,
    writer: Arc<Writer>,
    dead_letter: Option<(FutureProducer, String)>,
    metrics: StreamMetrics,
    concurrency: usize,
    offsets: OffsetTracker,
}

impl Sink {
    async fn run(mut self, mut shutdown: Shutdown) -> Result<(), SinkError> {
        let mut in_flight = FuturesUnordered::new();
        let mut store = tokio::time::interval(STORE_INTERVAL);
        store.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.requested() => break,
                Some(done) = in_flight.next(), if !in_flight.is_empty() => self.finish(done).await?,
                _ = store.tick() => self.store_offsets(),
                received = self.consumer.recv(), if in_flight.len() < self.concurrency => {
                    let message = match received {
                        Ok(message) => message.detach(),
                        Err(error) => {
                            tracing::warn!(%error, "Consumer error.");
                            continue;
                        }
                    };
                    self.metrics.records_in.inc();
                    self.offsets.start(message.partition(), message.offset());
                    let received = Instant::now();
                    match self.writer.row(message.payload(), message.timestamp().to_millis()) {
                        Ok(row) => {
                            let writer = Arc::clone(&self.writer);
                            in_flight.push(async move {
                                let outcome = writer.write(&row).await;
                                Done { message, received, outcome }
                            });
                        }
                        Err(reason) => self.finish(Done { message, received, outcome: Err(reason) }).await?,
                    }
                }
            }
        }
        // Writes still in flight are abandoned: their offsets were not stored, so
        // they are redelivered to whoever consumes the partitions next.
        drop(in_flight);
        self.store_offsets();
        kafka::commit_stored(&self.consumer);
        tracing::info!("Sink stopped.");
        Ok(())
    }

    async fn finish(&mut self, done: Done) -> Result<(), SinkError> {
        let Done {
            message,
            received,
            outcome,
        } = done;
        let (partition, offset) = (message.partition(), message.offset());
        match outcome {
            Ok(()) => {
                self.metrics.records_out.inc();
                self.metrics.observe_committed(
                    received.elapsed(),
                    message.timestamp().to_millis(),
                    now_ms(),
                );
            }
            Err(reason) => match &self.dead_letter {
                Some((producer, topic)) => {
                    let headers = dead_letter::headers(&message, &reason, None);
                    let mut record: FutureRecord<'_, [u8], [u8]> =
                        FutureRecord::to(topic).headers(headers);
                    if let Some(payload) = message.payload() {
                        record = record.payload(payload);
                    }
                    if let Some(key) = message.key() {
                        record = record.key(key);
                    }
                    producer
                        .send(record, Timeout::After(DEAD_LETTER_TIMEOUT))
                        .await
                        .map_err(|(source, _)| SinkError::DeadLetter {
                            topic: topic.clone(),
                            partition,
                            offset,
                            source,
                        })?;
                    self.metrics.records_dead_lettered.inc();
                }
                None => {
                    tracing::warn!(
                        reason,
                        partition,
                        offset,
                        "Record dropped: it cannot become a row."
                    );
                    self.metrics.records_dropped.inc();
                }
            },
        }
        self.offsets.finish(partition, offset);
        Ok(())
    }

    fn store_offsets(&mut self) {
        let Some(offsets) = self.offsets.take(&self.topic) else {
            return;
        };
        // Fails for partitions revoked meanwhile; their new owner redelivers them.
        if let Err(error) = self.consumer.store_offsets(&offsets) {
            tracing::debug!(%error, "Storing offsets failed.");
        }
    }
}
