//! What becomes of finished writes: metrics, dead letters, and the offsets to commit
//! once every record before them in their partition is done.

use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::util::Timeout;

use super::offsets::OffsetTracker;
use crate::stream::dead_letter;
use crate::stream::metrics::StreamMetrics;

use super::pipeline::Done;
use super::{SinkContext, SinkError};

/// Bound on delivering a dead-letter record.
pub(super) const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);

/// When finished writes are counted: both clocks, read once for all the writes that
/// finished together.
#[derive(Clone, Copy)]
pub(super) struct Now {
    pub(super) instant: Instant,
    pub(super) unix_ms: i64,
}

impl Now {
    pub(super) fn read() -> Self {
        Self {
            instant: Instant::now(),
            unix_ms: now_ms(),
        }
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |now| i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
}

/// What becomes of finished writes: metrics, dead letters, offsets to commit.
pub(super) struct Outcomes {
    pub(super) topic: String,
    pub(super) dead_letter: Option<(FutureProducer, String)>,
    pub(super) metrics: StreamMetrics,
    pub(super) offsets: OffsetTracker,
}

impl Outcomes {
    pub(super) async fn finish(&mut self, done: Done<'_>, now: Now) -> Result<(), SinkError> {
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

    pub(super) async fn finish_record(
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
                    producer
                        .send(
                            dead_letter::record(message, topic, &reason),
                            Timeout::After(DEAD_LETTER_TIMEOUT),
                        )
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
    pub(super) fn store(&mut self, consumer: &StreamConsumer<SinkContext>) {
        let Some(offsets) = self.offsets.take(&self.topic) else {
            return;
        };
        // Fails for partitions revoked meanwhile; their new owner redelivers them.
        if let Err(error) = consumer.store_offsets(&offsets) {
            tracing::debug!(%error, "Storing offsets failed.");
        }
    }
}
