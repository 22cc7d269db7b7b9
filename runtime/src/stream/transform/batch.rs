//! The transform's batches, and their commit on a thread of its own.
//!
//! A batch is the records of one transaction (exactly once) or of one flush (at least
//! once): where to rewind to if it fails, the offsets it commits, what to count once it
//! did. A commit waits on Kafka for tens of milliseconds; it runs on its own thread
//! while the loop polls and runs the program on the next records, which are produced
//! into the next batch once the commit is done.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use homestream_crds::streamtransform::Delivery;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::{
    COMMIT_INTERVAL, COMMIT_RECORDS, DeliveryContext, KAFKA_TIMEOUT, TransformContext,
    TransformError,
};

/// The records of the open batch: where to rewind to, what to commit, what to count.
#[derive(Default)]
pub struct Batch {
    pub started: Option<Instant>,
    pub first_offsets: BTreeMap<i32, i64>,
    pub next_offsets: BTreeMap<i32, i64>,
    pub received: Vec<(Instant, Option<i64>)>,
    pub out: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
    pub failures_before: u64,
}

impl Batch {
    pub fn is_open(&self) -> bool {
        self.started.is_some()
    }

    pub fn is_due(&self) -> bool {
        self.started.is_some_and(|started| {
            self.received.len() >= COMMIT_RECORDS || started.elapsed() >= COMMIT_INTERVAL
        })
    }

    fn offsets(&self, topic: &str) -> Result<TopicPartitionList, KafkaError> {
        let mut offsets = TopicPartitionList::with_capacity(self.next_offsets.len());
        for (partition, next) in &self.next_offsets {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        Ok(offsets)
    }
}

/// What a commit needs: the clients, the guarantee, and the input topic.
pub struct Committer {
    pub producer: Arc<ThreadedProducer<DeliveryContext>>,
    pub consumer: Arc<BaseConsumer<TransformContext>>,
    pub delivery: Delivery,
    pub input: String,
}

impl Committer {
    /// Starts committing `batch` on a thread of its own.
    pub fn start(self: &Arc<Self>, batch: Batch) -> Committing {
        let committer = Arc::clone(self);
        Committing(std::thread::spawn(move || {
            let committed = committer.commit(&batch);
            (batch, committed)
        }))
    }

    /// Commits the transaction with the batch's offsets, or (at least once) flushes the
    /// producer and stores the offsets once every result was delivered.
    fn commit(&self, batch: &Batch) -> Result<(), TransformError> {
        let offsets = batch
            .offsets(&self.input)
            .map_err(|source| TransformError::Transaction {
                step: "listing offsets",
                source,
            })?;
        match self.delivery {
            Delivery::ExactlyOnce => {
                let group = self
                    .consumer
                    .group_metadata()
                    .ok_or(TransformError::NoGroupMetadata)?;
                self.producer
                    .send_offsets_to_transaction(&offsets, &group, KAFKA_TIMEOUT)
                    .map_err(|source| TransformError::Transaction {
                        step: "sending offsets to the transaction",
                        source,
                    })?;
                self.producer
                    .commit_transaction(KAFKA_TIMEOUT)
                    .map_err(|source| TransformError::Transaction {
                        step: "committing the transaction",
                        source,
                    })
            }
            Delivery::AtLeastOnce => {
                self.producer.flush(KAFKA_TIMEOUT).map_err(|source| {
                    TransformError::Transaction {
                        step: "flushing the producer",
                        source,
                    }
                })?;
                let failures =
                    self.producer.context().failures.load(Ordering::SeqCst) - batch.failures_before;
                if failures > 0 {
                    return Err(TransformError::Delivery { failures });
                }
                self.consumer.store_offsets(&offsets).map_err(|source| {
                    TransformError::Transaction {
                        step: "storing offsets",
                        source,
                    }
                })
            }
        }
    }
}

/// A batch being committed.
pub struct Committing(JoinHandle<(Batch, Result<(), TransformError>)>);

impl Committing {
    /// Whether the commit is done, so that [`Committing::wait`] returns at once.
    pub fn is_done(&self) -> bool {
        self.0.is_finished()
    }

    /// Waits for the commit: the batch and how its commit went.
    pub fn wait(self) -> (Batch, Result<(), TransformError>) {
        self.0
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}
