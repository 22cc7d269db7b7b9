//! The transform's loop on its blocking thread: poll a chunk, run the program on the
//! pool, produce the results in order, and end batches (transactions with
//! `ExactlyOnce`), committing one on its own thread while the next fills; a rebalance or
//! a failure aborts the open batch and rewinds to its first offsets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use homestream_crds::streamtransform::{Delivery, ValidatedStreamTransform};
use homestream_crds::topic::OnError;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::batch::{Batch, Committer, Committing};
use crate::stream::dead_letter;
use crate::stream::metrics::StreamMetrics;
use crate::stream::pool::Pool;
use homestream_common::kafka::{self, RefusedConnection};
use homestream_common::program::{Input, Origin, Outcome, Program};
use homestream_common::serve::Readiness;
use homestream_common::shutdown::Shutdown;

use super::{
    COMMIT_RECORDS, DeliveryContext, KAFKA_TIMEOUT, POLL_TIMEOUT, POLL_WHILE_COMMITTING,
    REFUSAL_CHECK_INTERVAL, TRANSACTION_TIMEOUT_MS, TransformContext, TransformError,
    chunk_records,
};

pub(super) struct Transform<'p> {
    pub(super) producer: Arc<ThreadedProducer<DeliveryContext>>,
    pub(super) program: &'p Program,
    pub(super) pool: Pool<'p>,
    pub(super) spec: ValidatedStreamTransform,
    pub(super) metrics: StreamMetrics,
    /// The batch results are produced into: the open transaction.
    pub(super) batch: Batch,
    pub(super) committer: Arc<Committer>,
    /// The batch before it, while it commits.
    pub(super) committing: Option<Committing>,
}

/// A record the program ran on, with when it was polled and what the program made of it.
pub(super) struct Processed<'c> {
    pub(super) message: BorrowedMessage<'c>,
    pub(super) received: Instant,
    pub(super) outcome: Outcome,
}

impl<'p> Transform<'p> {
    /// Creates the clients, fences older instances (exactly-once) and subscribes.
    pub(super) fn connect(
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

    pub(super) fn run(
        mut self,
        consumer: &BaseConsumer<TransformContext>,
        shutdown: &Shutdown,
        readiness: &Readiness,
    ) -> Result<(), TransformError> {
        readiness.set(true);
        let mut chunk = Vec::with_capacity(chunk_records(self.program));
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

    /// Polls up to [`chunk_records`] records into `chunk`: waits for the first, then
    /// takes what is already there.
    pub(super) fn poll_chunk<'c>(
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
        let limit = chunk_records(self.program);
        while chunk.len() < limit {
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
    pub(super) fn run_program<'c>(
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
    pub(super) fn produce(
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
                if let Err(abort) = self.abort(consumer, &crate::stream::error_chain(&error)) {
                    tracing::debug!(
                        error = crate::stream::error_chain(&abort),
                        "Abort failed too."
                    );
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Adds a record to the open batch (opening one if needed) and produces what the
    /// program made of it.
    pub(super) fn handle(
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
                    Err(error) if error.is_the_records() => crate::stream::error_chain(&error),
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
    pub(super) fn start_commit(&mut self) {
        if self.batch.is_open() {
            self.committing = Some(self.committer.start(std::mem::take(&mut self.batch)));
        }
    }

    /// Waits for the batch being committed, if any, and counts it. A commit that failed,
    /// but not fatally, aborts the batch and rewinds to its first records: the waiting
    /// ones, polled after them, are dropped and read again too.
    pub(super) fn settle(
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
                self.abort(consumer, &crate::stream::error_chain(&error))
            }
        }
    }

    /// Counts a committed batch in the metrics.
    pub(super) fn count(&self, batch: &Batch) {
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
    pub(super) fn abort(
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
pub(super) fn init_transactions(
    producer: &ThreadedProducer<DeliveryContext>,
) -> Result<(), TransformError> {
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
pub(super) fn send(
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
