//! The sink's pipeline: records from the consumer become writes of up to `batchRows`
//! rows, at most `writeConcurrency` in flight, until shutdown.

use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};

use homestream_common::kafka::{self};
use homestream_common::shutdown::Shutdown;

use super::outcomes::{Now, Outcomes};
use super::writer::Writer;
use super::{SinkContext, SinkError};

/// How often acknowledged offsets are handed to the consumer, which commits them
/// every second: often enough that a restart redoes little.
pub(super) const STORE_INTERVAL: Duration = Duration::from_millis(200);
/// A write takes no more records once their payloads reach this size, under
/// Cassandra's default `batch_size_warn_threshold` of 5 KiB.
pub(super) const BATCH_BYTES: usize = 4 * 1024;

/// The records of one write: `first` and those already fetched after it, up to
/// `rows` records or about [`BATCH_BYTES`] of payload. Never waits.
pub(super) fn take_batch<'c>(
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

/// A finished write: its records, when they were received, and each one's outcome.
pub(super) struct Done<'a> {
    pub(super) messages: Vec<BorrowedMessage<'a>>,
    pub(super) received: Instant,
    pub(super) outcomes: Vec<Result<(), String>>,
}

/// The sink's pipeline: records from the consumer become writes of up to
/// `batch_rows` rows, at most `concurrency` in flight; each holds its Kafka
/// messages, whose payloads the rows borrow, until Cassandra acknowledged them.
pub(super) struct Sink {
    pub(super) consumer: StreamConsumer<SinkContext>,
    pub(super) writer: Writer,
    pub(super) concurrency: usize,
    pub(super) batch_rows: usize,
    pub(super) outcomes: Outcomes,
}

impl Sink {
    pub(super) async fn run(self, mut shutdown: Shutdown) -> Result<(), SinkError> {
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
