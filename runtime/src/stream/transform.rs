//! `transform`: consume the input topic in a consumer group, run the StreamTransform's
//! VRL program on each record, and produce the results to the output topic.
//!
//! Work goes in batches of at most [`COMMIT_RECORDS`] records or [`COMMIT_INTERVAL`].
//! With `ExactlyOnce` a batch is a Kafka transaction: results, dead-letter copies and
//! the consumed offsets commit together, and a failure aborts the transaction and
//! rewinds the consumer to the batch's first offsets. With `AtLeastOnce` a batch ends
//! by flushing the producer, and offsets are stored for commit only after every
//! result was delivered. The loop is synchronous on a blocking thread: the program is
//! CPU work, and librdkafka's calls block. Records are polled in chunks of up to
//! [`CHUNK_RECORDS`], run through the program on a [`Pool`] of threads, and produced
//! by this one thread in the order they were polled. A batch commits on a thread of
//! its own (see [`batch`]) while the loop polls and runs the program on the next
//! records; their results wait, and go into the next batch once the commit is done.

mod batch;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use homestream_crds::StreamTransformSpec;
use homestream_crds::streamtransform::{Delivery, ValidatedStreamTransform};
use homestream_crds::topic::OnError;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset};

use self::batch::{Batch, Committer, Committing};
use super::dead_letter;
use super::metrics::StreamMetrics;
use super::pool::{Input, Pool};
use crate::config;
use crate::process::{Process, Serving};
use homestream_common::kafka::{self, RefusedConnection};
use homestream_common::program::{Origin, Outcome, Program};
use homestream_common::serve::Readiness;
use homestream_common::shutdown::Shutdown;

/// A batch commits after this long: the latency a result waits to become visible to
/// read-committed consumers, against one commit round trip per interval.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// A batch commits after about this many input records (checked between chunks),
/// bounding the work an abort redoes.
pub const COMMIT_RECORDS: usize = 10_000;
/// Records polled and run through the program together: enough to keep every thread
/// of the pool busy for a while, few enough to hold a few hundred kilobytes.
pub const CHUNK_RECORDS: usize = 512;
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
    /// The VRL program does not compile (the operator should have refused it).
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

struct Transform<'p> {
    producer: Arc<ThreadedProducer<DeliveryContext>>,
    program: &'p Program,
    pool: Pool<'p>,
    spec: ValidatedStreamTransform,
    metrics: StreamMetrics,
    /// The batch results are produced into: the open transaction.
    batch: Batch,
    committer: Arc<Committer>,
    /// The batch before it, while it commits.
    committing: Option<Committing>,
}

/// A record the program ran on, with when it was polled and what the program made of it.
struct Processed<'c> {
    message: BorrowedMessage<'c>,
    received: Instant,
    outcome: Outcome,
}

impl<'p> Transform<'p> {
    /// Creates the clients, fences older instances (exactly-once) and subscribes.
    fn connect(
        base: &rdkafka::ClientConfig,
        group: &str,
        spec: ValidatedStreamTransform,
        program: &'p Program,
        metrics: StreamMetrics,
    ) -> Result<(Arc<BaseConsumer<TransformContext>>, Self), TransformError> {
        let setup = |step: &str| {
            let step = step.to_owned();
            move |source| TransformError::Setup { step, source }
        };
        let exactly_once = spec.delivery == Delivery::ExactlyOnce;
        let mut producer_config = kafka::producer_config(base);
        if exactly_once {
            producer_config
                .set(
                    "transactional.id",
                    format!("{group}.{}", kafka::instance_name()),
                )
                .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
        }
        let refused = Arc::new(RefusedConnection::default());
        let producer: Arc<ThreadedProducer<DeliveryContext>> = producer_config
            .create_with_context(DeliveryContext {
                failures: AtomicU64::new(0),
                refused: Arc::clone(&refused),
            })
            .map(Arc::new)
            .map_err(setup("creating the Kafka producer"))?;
        if exactly_once {
            init_transactions(&producer)?;
        }
        let context = TransformContext {
            lag: metrics.consumer_lag.clone(),
            revoked: AtomicBool::new(false),
            refused,
        };
        let consumer: Arc<BaseConsumer<TransformContext>> =
            kafka::consumer_config(base, group, &spec.input)
                // Exactly-once commits offsets in the transaction; at-least-once commits
                // what it stored after delivery, every second.
                .set(
                    "enable.auto.commit",
                    if exactly_once { "false" } else { "true" },
                )
                .set("auto.commit.interval.ms", "1000")
                .create_with_context(context)
                .map(Arc::new)
                .map_err(setup("creating the Kafka consumer"))?;
        consumer
            .subscribe(&[spec.input.topic.as_str()])
            .map_err(setup(&format!(
                "subscribing to {}",
                spec.input.topic.as_str()
            )))?;
        let committer = Arc::new(Committer {
            producer: Arc::clone(&producer),
            consumer: Arc::clone(&consumer),
            delivery: spec.delivery,
            input: spec.input.topic.as_str().to_owned(),
        });
        Ok((
            consumer,
            Self {
                producer,
                program,
                pool: Pool::new(program, Pool::default_threads()),
                spec,
                metrics,
                batch: Batch::default(),
                committer,
                committing: None,
            },
        ))
    }

    fn run(
        mut self,
        consumer: &BaseConsumer<TransformContext>,
        shutdown: &Shutdown,
        readiness: &Readiness,
    ) -> Result<(), TransformError> {
        readiness.set(true);
        let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
        // What the program made of records polled while a batch commits: produced into
        // the next batch once the commit is done.
        let mut waiting = Vec::new();
        while !shutdown.is_requested() {
            if let Some(reason) = consumer.context().refused.reason() {
                return Err(TransformError::Refused {
                    reason: reason.to_owned(),
                });
            }
            self.poll_chunk(consumer, &mut chunk, &mut waiting)?;
            self.run_program(&mut chunk, &mut waiting);
            if self.committing.as_ref().is_some_and(Committing::is_done)
                || waiting.len() >= COMMIT_RECORDS
            {
                self.settle(consumer, &mut waiting)?;
            }
            if self.committing.is_none() {
                self.produce(consumer, &mut waiting)?;
                if self.batch.is_due() {
                    self.start_commit();
                }
            }
        }
        readiness.set(false);
        self.settle(consumer, &mut waiting)?;
        self.produce(consumer, &mut waiting)?;
        self.start_commit();
        self.settle(consumer, &mut waiting)?;
        if self.spec.delivery == Delivery::AtLeastOnce {
            kafka::commit_stored(consumer);
        }
        tracing::info!("Transform stopped.");
        Ok(())
    }

    /// Polls up to [`CHUNK_RECORDS`] records into `chunk`: waits for the first, then
    /// takes what is already there.
    fn poll_chunk<'c>(
        &mut self,
        consumer: &'c BaseConsumer<TransformContext>,
        chunk: &mut Vec<BorrowedMessage<'c>>,
        waiting: &mut Vec<Processed<'c>>,
    ) -> Result<(), TransformError> {
        let mut timeout = if self.committing.is_some() {
            POLL_WHILE_COMMITTING
        } else {
            POLL_TIMEOUT
        };
        while chunk.len() < CHUNK_RECORDS {
            let polled = consumer.poll(timeout);
            if consumer.context().revoked.swap(false, Ordering::SeqCst) {
                // Records polled before the rebalance are of the old assignment, which
                // the new one starts again from the committed offsets: they are
                // dropped, waiting or in the open batch. The record of this poll is
                // already of the new assignment.
                chunk.clear();
                self.settle(consumer, waiting)?;
                waiting.clear();
                self.abort(consumer, "partitions were revoked")?;
            }
            match polled {
                Some(Ok(message)) => chunk.push(message),
                Some(Err(error)) => {
                    tracing::warn!(%error, "Consumer error.");
                    break;
                }
                None => break,
            }
            timeout = Duration::ZERO;
        }
        Ok(())
    }

    /// Runs the program on a chunk of records, whose outcomes then wait to be produced.
    fn run_program<'c>(
        &mut self,
        chunk: &mut Vec<BorrowedMessage<'c>>,
        waiting: &mut Vec<Processed<'c>>,
    ) {
        if chunk.is_empty() {
            return;
        }
        let received = Instant::now();
        let inputs: Vec<Input<'_>> = chunk
            .iter()
            .map(|message| {
                let origin = Origin {
                    key: message.key(),
                    topic: message.topic(),
                    partition: message.partition(),
                    offset: message.offset(),
                    timestamp: message.timestamp().to_millis(),
                };
                (message.payload().unwrap_or_default(), origin)
            })
            .collect();
        let outcomes = self.pool.run(&inputs);
        drop(inputs);
        waiting.extend(
            chunk
                .drain(..)
                .zip(outcomes)
                .map(|(message, outcome)| Processed {
                    message,
                    received,
                    outcome,
                }),
        );
    }

    /// Produces the waiting outcomes, in the order they were polled, into the open batch.
    fn produce(
        &mut self,
        consumer: &BaseConsumer<TransformContext>,
        waiting: &mut Vec<Processed<'_>>,
    ) -> Result<(), TransformError> {
        for processed in waiting.drain(..) {
            if let Err(error) =
                self.handle(&processed.message, processed.received, processed.outcome)
            {
                // The producer cannot take results: abort, so the open transaction
                // holds up no read-committed consumer, and stop. After the restart the
                // batch is processed again from its committed offsets.
                if let Err(abort) = self.abort(consumer, &super::error_chain(&error)) {
                    tracing::debug!(error = super::error_chain(&abort), "Abort failed too.");
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Adds a record to the open batch (opening one if needed) and produces what the
    /// program made of it.
    fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        received: Instant,
        outcome: Outcome,
    ) -> Result<(), TransformError> {
        self.metrics.records_in.inc();
        if !self.batch.is_open() {
            if self.spec.delivery == Delivery::ExactlyOnce {
                self.producer.begin_transaction().map_err(|source| {
                    TransformError::Transaction {
                        step: "beginning a transaction",
                        source,
                    }
                })?;
            }
            self.batch.started = Some(Instant::now());
            self.batch.failures_before = self.producer.context().failures.load(Ordering::SeqCst);
        }
        let (partition, offset) = (message.partition(), message.offset());
        self.batch.first_offsets.entry(partition).or_insert(offset);
        self.batch.next_offsets.insert(partition, offset + 1);
        self.batch
            .received
            .push((received, message.timestamp().to_millis()));

        let payload = message.payload().unwrap_or_default();
        let error = match outcome {
            Outcome::Records(records) => {
                let output = self.spec.output.name.as_str();
                let sent = records.iter().try_for_each(|record| {
                    send(
                        &self.producer,
                        output,
                        record.key.as_deref(),
                        &record.value,
                        None,
                    )
                });
                match sent {
                    Ok(()) => {
                        self.batch.out += records.len() as u64;
                        return Ok(());
                    }
                    // Too large for Kafka: the record goes the way of a failed one
                    // rather than stopping the stream.
                    Err(error) if error.is_the_records() => super::error_chain(&error),
                    Err(error) => return Err(error),
                }
            }
            Outcome::Aborted(reason) => {
                tracing::debug!(reason, partition, offset, "Record dropped by abort.");
                self.batch.dropped += 1;
                return Ok(());
            }
            Outcome::Failed(error) => error,
        };
        match (self.spec.on_error, &self.spec.dead_letter) {
            (OnError::DeadLetter, Some(dead_letter)) => {
                let headers = dead_letter::headers(message, &error, Some(self.program.hash()));
                send(
                    &self.producer,
                    dead_letter.name.as_str(),
                    message.key(),
                    payload,
                    Some(headers),
                )?;
                self.batch.dead_lettered += 1;
            }
            _ => {
                tracing::warn!(
                    error,
                    topic = message.topic(),
                    partition,
                    offset,
                    "Record dropped: the program failed."
                );
                self.batch.dropped += 1;
            }
        }
        Ok(())
    }

    /// Starts committing the open batch, if any; results go into a new one meanwhile.
    fn start_commit(&mut self) {
        if self.batch.is_open() {
            self.committing = Some(self.committer.start(std::mem::take(&mut self.batch)));
        }
    }

    /// Waits for the batch being committed, if any, and counts it. A commit that failed,
    /// but not fatally, aborts the batch and rewinds to its first records: the waiting
    /// ones, polled after them, are dropped and read again too.
    fn settle(
        &mut self,
        consumer: &BaseConsumer<TransformContext>,
        waiting: &mut Vec<Processed<'_>>,
    ) -> Result<(), TransformError> {
        let Some(committing) = self.committing.take() else {
            return Ok(());
        };
        let (batch, committed) = committing.wait();
        match committed {
            Ok(()) => {
                self.count(&batch);
                Ok(())
            }
            Err(error) if error.is_fatal() => Err(error),
            Err(error) => {
                // Nothing is produced while a batch commits: the failed one is the open
                // one again, to abort.
                self.batch = batch;
                for processed in waiting.drain(..) {
                    let message = &processed.message;
                    self.batch
                        .first_offsets
                        .entry(message.partition())
                        .or_insert(message.offset());
                }
                self.abort(consumer, &super::error_chain(&error))
            }
        }
    }

    /// Counts a committed batch in the metrics.
    fn count(&self, batch: &Batch) {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |now| i64::try_from(now.as_millis()).unwrap_or(i64::MAX));
        for (received, timestamp) in &batch.received {
            self.metrics
                .observe_committed(received.elapsed(), *timestamp, now_ms);
        }
        self.metrics.records_out.inc_by(batch.out);
        self.metrics
            .records_dead_lettered
            .inc_by(batch.dead_lettered);
        self.metrics.records_dropped.inc_by(batch.dropped);
    }

    /// Aborts the open batch and rewinds the consumer to its first offsets, so every
    /// record of it is processed again (exactly-once: its results were never visible).
    fn abort(
        &mut self,
        consumer: &BaseConsumer<TransformContext>,
        reason: &str,
    ) -> Result<(), TransformError> {
        if !self.batch.is_open() {
            return Ok(());
        }
        tracing::warn!(
            reason,
            records = self.batch.received.len(),
            "Aborting the batch and rewinding."
        );
        self.metrics.retries.inc();
        if self.spec.delivery == Delivery::ExactlyOnce {
            self.producer
                .abort_transaction(KAFKA_TIMEOUT)
                .map_err(|source| TransformError::Transaction {
                    step: "aborting the transaction",
                    source,
                })?;
        }
        let input = self.spec.input.topic.as_str();
        for (partition, offset) in &self.batch.first_offsets {
            // A revoked partition cannot be sought; its new owner starts from the
            // committed offset, which is this batch's first.
            if let Err(error) =
                consumer.seek(input, *partition, Offset::Offset(*offset), KAFKA_TIMEOUT)
            {
                tracing::debug!(%error, partition, "Not rewinding a partition no longer assigned.");
            }
        }
        self.batch = Batch::default();
        Ok(())
    }
}

/// Initialises transactions, which also aborts one that a killed predecessor with this
/// transactional id left open; gives up as soon as the brokers refuse the connection.
fn init_transactions(producer: &ThreadedProducer<DeliveryContext>) -> Result<(), TransformError> {
    let deadline = Instant::now() + KAFKA_TIMEOUT;
    loop {
        match producer.init_transactions(REFUSAL_CHECK_INTERVAL) {
            Ok(()) => return Ok(()),
            // A timed-out call, or one the coordinator was not ready for, may be made again.
            Err(KafkaError::Transaction(error))
                if error.is_retriable() && Instant::now() < deadline =>
            {
                if let Some(reason) = producer.context().refused.reason() {
                    return Err(TransformError::Refused {
                        reason: reason.to_owned(),
                    });
                }
            }
            Err(source) => {
                return Err(TransformError::Setup {
                    step: "initialising transactions".to_owned(),
                    source,
                });
            }
        }
    }
}

/// Queues a record, waiting while the producer queue is full (backpressure).
fn send(
    producer: &ThreadedProducer<DeliveryContext>,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    headers: Option<OwnedHeaders>,
) -> Result<(), TransformError> {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((source, _)) => {
                return Err(TransformError::Produce {
                    topic: topic.to_owned(),
                    source,
                });
            }
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
