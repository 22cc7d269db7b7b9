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
mod row;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use homestream_crds::CassandraSinkSpec;
use homestream_crds::cassandrasink::{Consistency, ValidatedCassandraSink};
use homestream_crds::runtime::{CASSANDRA_PASSWORD_ENV, CASSANDRA_USERNAME_ENV, ResolvedCassandra};
use homestream_crds::topic::OnError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::batch::{Batch, BatchStatement, BatchType};
use scylla::statement::prepared::PreparedStatement;

use self::offsets::OffsetTracker;
use self::row::{Row, RowMapper};
use super::metrics::StreamMetrics;
use super::{dead_letter, error_chain};
use crate::config;
use crate::process::Process;
use homestream_common::kafka::{self, RefusedConnection};
use homestream_common::shutdown::Shutdown;

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
/// A write takes no more records once their payloads reach this size, under
/// Cassandra's default `batch_size_warn_threshold` of 5 KiB.
const BATCH_BYTES: usize = 4 * 1024;
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

/// The Cassandra side: a session, the prepared insert, and unlogged batches of it.
struct Writer {
    session: Session,
    insert: PreparedStatement,
    /// `batches[n - 2]` is a batch of `n` inserts, for `n` from 2 to `batchRows`.
    batches: Vec<Batch>,
    keyspace: String,
    table: String,
    mapper: RowMapper,
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
        let mapper = RowMapper::new(spec);
        let names: Vec<&str> = mapper.column_names().collect();
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
        let batches = (2..=spec.batch_rows.get())
            .map(|rows| {
                Batch::new_with_statements(
                    BatchType::Unlogged,
                    vec![BatchStatement::PreparedStatement(insert.clone()); rows],
                )
            })
            .collect();
        Ok(Self {
            session,
            insert,
            batches,
            keyspace: spec.keyspace.clone(),
            table: spec.table.clone(),
            mapper,
            retries,
        })
    }

    /// Writes records as rows, in one unlogged batch per replica that owns some of
    /// them; the outcome of each record, in order: `Err` says why it cannot be a row.
    async fn write_records(&self, messages: &[BorrowedMessage<'_>]) -> Vec<Result<(), String>> {
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut rows = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let write_time_ms = message.timestamp().to_millis().unwrap_or_else(now_ms);
            let row = self.mapper.row(
                message.payload().unwrap_or_default(),
                write_time_ms.saturating_mul(1000),
            );
            match row {
                Ok(row) => {
                    rows.push((index, row));
                    outcomes.push(Ok(()));
                }
                Err(reason) => outcomes.push(Err(reason)),
            }
        }
        let groups = self.by_replica(rows);
        let written = match groups.as_slice() {
            [group] => vec![self.write_group(group).await],
            groups => join_all(groups.iter().map(|group| self.write_group(group))).await,
        };
        for (group, results) in groups.iter().zip(written) {
            for ((index, _), result) in group.iter().zip(results) {
                outcomes[*index] = result;
            }
        }
        outcomes
    }

    /// Rows grouped by the replica token-aware routing sends each to, so that a batch
    /// costs its coordinator no extra hop. With one node there is one group.
    fn by_replica<'r>(&self, rows: Vec<(usize, Row<'r>)>) -> Vec<Vec<(usize, Row<'r>)>> {
        let cluster = self.session.get_cluster_state();
        if cluster.get_nodes_info().len() <= 1 {
            return if rows.is_empty() {
                Vec::new()
            } else {
                vec![rows]
            };
        }
        group_by(rows, |(_, row)| {
            let token = self.insert.calculate_token(row).ok().flatten()?;
            cluster
                .get_token_endpoints(&self.keyspace, &self.table, token)
                .first()
                .map(|(node, _)| node.host_id)
        })
    }

    /// Writes one replica's rows: a batch, or when Cassandra refuses the batch for one
    /// of its rows (a key too long, say) or its size, each row on its own, so that only
    /// the bad ones fail.
    async fn write_group(&self, group: &[(usize, Row<'_>)]) -> Vec<Result<(), String>> {
        let rows: Vec<&Row<'_>> = group.iter().map(|(_, row)| row).collect();
        let batch = match rows.len() {
            0 => return Vec::new(),
            1 => return vec![self.write(rows[0]).await],
            count => &self.batches[count - 2],
        };
        match self
            .retrying(|| self.session.batch(batch, rows.as_slice()))
            .await
        {
            Ok(()) => vec![Ok(()); rows.len()],
            Err(reason) => {
                tracing::info!(
                    reason,
                    rows = rows.len(),
                    "Cassandra refused a batch; writing its rows one by one."
                );
                join_all(rows.iter().map(|row| self.write(row))).await
            }
        }
    }

    /// Writes a row, retrying what Cassandra may take later; `Err` is a record error.
    async fn write(&self, row: &Row<'_>) -> Result<(), String> {
        self.retrying(|| self.session.execute_unpaged(&self.insert, row))
            .await
    }

    /// Makes a request until Cassandra takes it or refuses it for good, waiting with
    /// backoff between attempts; `Err` is why it was refused (a record error).
    async fn retrying<F, R>(&self, mut request: impl FnMut() -> F) -> Result<(), String>
    where
        F: Future<Output = Result<R, ExecutionError>>,
    {
        let mut backoff = INITIAL_BACKOFF;
        loop {
            match request().await {
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

/// `items` in groups of equal `key`, each group and the items in it in first-seen order.
fn group_by<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in items {
        let item_key = key(&item);
        match groups
            .iter_mut()
            .find(|(group_key, _)| *group_key == item_key)
        {
            Some((_, group)) => group.push(item),
            None => groups.push((item_key, vec![item])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
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

/// The records of one write: `first` and those already fetched after it, up to
/// `rows` records or about [`BATCH_BYTES`] of payload. Never waits.
fn take_batch<'c>(
    first: KafkaResult<BorrowedMessage<'c>>,
    messages: &mut (impl Stream<Item = KafkaResult<BorrowedMessage<'c>>> + Unpin),
    rows: usize,
) -> Vec<BorrowedMessage<'c>> {
    let mut records = Vec::with_capacity(rows);
    let mut bytes = 0;
    let mut next = Some(first);
    while let Some(received) = next {
        match received {
            Ok(message) => {
                bytes += message.payload_len();
                records.push(message);
            }
            Err(error) => tracing::warn!(%error, "Consumer error."),
        }
        next = if records.len() < rows && bytes < BATCH_BYTES {
            messages.next().now_or_never().flatten()
        } else {
            None
        };
    }
    records
}

/// When finished writes are counted: both clocks, read once for all the writes that
/// finished together.
#[derive(Clone, Copy)]
struct Now {
    instant: Instant,
    unix_ms: i64,
}

impl Now {
    fn read() -> Self {
        Self {
            instant: Instant::now(),
            unix_ms: now_ms(),
        }
    }
}

/// A finished write: its records, when they were received, and each one's outcome.
struct Done<'a> {
    messages: Vec<BorrowedMessage<'a>>,
    received: Instant,
    outcomes: Vec<Result<(), String>>,
}

/// The sink's pipeline: records from the consumer become writes of up to
/// `batch_rows` rows, at most `concurrency` in flight; each holds its Kafka
/// messages, whose payloads the rows borrow, until Cassandra acknowledged them.
struct Sink {
    consumer: StreamConsumer<SinkContext>,
    writer: Writer,
    concurrency: usize,
    batch_rows: usize,
    outcomes: Outcomes,
}

impl Sink {
    async fn run(self, mut shutdown: Shutdown) -> Result<(), SinkError> {
        let Self {
            consumer,
            writer,
            concurrency,
            batch_rows,
            mut outcomes,
        } = self;
        let mut in_flight = FuturesUnordered::new();
        let mut store = tokio::time::interval(STORE_INTERVAL);
        store.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One stream and one shutdown future for the whole run: making them anew per
        // record registered and removed a waker each time, under a lock.
        let mut messages = consumer.stream();
        let requested = shutdown.requested();
        tokio::pin!(requested);
        loop {
            tokio::select! {
                biased;
                () = &mut requested => break,
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    // Every write that finished meanwhile, without a turn of the loop
                    // (and a poll of each branch) per write; they finished at about
                    // the same time, so the clocks are read once for them all.
                    let now = Now::read();
                    let mut next = Some(done);
                    while let Some(done) = next {
                        outcomes.finish(done, now).await?;
                        next = in_flight.next().now_or_never().flatten();
                    }
                }
                _ = store.tick() => {
                    if let Some(reason) = consumer.context().refused.reason() {
                        return Err(SinkError::Refused { reason: reason.to_owned() });
                    }
                    outcomes.store(&consumer);
                }
                Some(received) = messages.next(), if in_flight.len() < concurrency => {
                    // Likewise every record already fetched, while there is room: up to
                    // a batch's worth a write.
                    let received_at = Instant::now();
                    let mut next = Some(received);
                    while let Some(first) = next {
                        let records = take_batch(first, &mut messages, batch_rows);
                        for message in &records {
                            outcomes.metrics.records_in.inc();
                            outcomes.offsets.start(message.partition(), message.offset());
                        }
                        if !records.is_empty() {
                            let writer = &writer;
                            in_flight.push(async move {
                                let outcomes = writer.write_records(&records).await;
                                Done { messages: records, received: received_at, outcomes }
                            });
                        }
                        next = if in_flight.len() < concurrency {
                            messages.next().now_or_never().flatten()
                        } else {
                            None
                        };
                    }
                }
            }
        }
        // Writes still in flight are abandoned: their offsets were not stored, so
        // they are redelivered to whoever consumes the partitions next.
        drop(in_flight);
        outcomes.store(&consumer);
        kafka::commit_stored(&consumer);
        tracing::info!("Sink stopped.");
        Ok(())
    }
}

/// What becomes of finished writes: metrics, dead letters, offsets to commit.
struct Outcomes {
    topic: String,
    dead_letter: Option<(FutureProducer, String)>,
    metrics: StreamMetrics,
    offsets: OffsetTracker,
}

impl Outcomes {
    async fn finish(&mut self, done: Done<'_>, now: Now) -> Result<(), SinkError> {
        let Done {
            messages,
            received,
            outcomes,
        } = done;
        for (message, outcome) in messages.iter().zip(outcomes) {
            self.finish_record(message, received, outcome, now).await?;
        }
        Ok(())
    }

    async fn finish_record(
        &mut self,
        message: &BorrowedMessage<'_>,
        received: Instant,
        outcome: Result<(), String>,
        now: Now,
    ) -> Result<(), SinkError> {
        let (partition, offset) = (message.partition(), message.offset());
        match outcome {
            Ok(()) => {
                self.metrics.records_out.inc();
                self.metrics.observe_committed(
                    now.instant.saturating_duration_since(received),
                    message.timestamp().to_millis(),
                    now.unix_ms,
                );
            }
            Err(reason) => match &self.dead_letter {
                Some((producer, topic)) => {
                    let headers = dead_letter::headers(message, &reason, None);
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

    /// Hands the offsets of finished records to the consumer, which commits them.
    fn store(&mut self, consumer: &StreamConsumer<SinkContext>) {
        let Some(offsets) = self.offsets.take(&self.topic) else {
            return;
        };
        // Fails for partitions revoked meanwhile; their new owner redelivers them.
        if let Err(error) = consumer.store_offsets(&offsets) {
            tracing::debug!(%error, "Storing offsets failed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_seen_order() {
        let rows = vec![(0, 'a'), (1, 'b'), (2, 'a'), (3, 'c'), (4, 'b'), (5, 'a')];
        assert_eq!(
            group_by(rows, |(_, replica)| *replica),
            vec![
                vec![(0, 'a'), (2, 'a'), (5, 'a')],
                vec![(1, 'b'), (4, 'b')],
                vec![(3, 'c')],
            ]
        );
        assert!(group_by(Vec::<u8>::new(), |_| ()).is_empty());
    }
}
