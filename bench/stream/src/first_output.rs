//! When the next stage first sees a process's output: the first record of its output
//! topic a read-committed consumer gets (as a downstream component reads it), or the
//! first row of its table. Watched from before the process starts, so that its start-up
//! time runs from its start to its first output, for homestream and Spark alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use homestream_tests::{StackEnv, kafka, random_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use scylla::client::session_builder::SessionBuilder;
use tokio::task::JoinHandle;

use crate::PARTITIONS;

/// Where a process's output shows.
#[derive(Clone, Copy)]
pub(crate) enum Output<'a> {
    /// A topic of [`PARTITIONS`] partitions.
    Topic(&'a str),
    /// The table `listings` of a keyspace.
    Table(&'a str),
    /// Not watched (the DeltaSink's files).
    Unwatched,
}

/// How often the table is polled, and the longest a topic poll waits: a bound on the
/// error of the start-up time.
const POLL: Duration = Duration::from_millis(20);

/// A watch under way.
pub(crate) struct Watch {
    stop: Arc<AtomicBool>,
    task: Option<JoinHandle<Result<Option<Instant>>>>,
}

impl Watch {
    /// Starts watching `output`, from its beginning.
    ///
    /// # Errors
    /// When the consumer or the Cassandra session cannot be made.
    pub(crate) async fn start(env: &StackEnv, output: Output<'_>) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = match output {
            Output::Topic(topic) => {
                let consumer: BaseConsumer = kafka::client_config(env)
                    .set("group.id", random_name("bench-watch"))
                    .set("enable.auto.commit", "false")
                    .set("isolation.level", "read_committed")
                    // Librdkafka's default holds a fetch up to 500 ms for data.
                    .set("fetch.wait.max.ms", "10")
                    .create()
                    .context("creating the output watcher's consumer")?;
                let mut partitions = TopicPartitionList::new();
                for partition in 0..PARTITIONS {
                    partitions.add_partition_offset(topic, partition, Offset::Beginning)?;
                }
                consumer.assign(&partitions)?;
                Some(tokio::task::spawn_blocking(move || {
                    while !stopped.load(Ordering::Relaxed) {
                        if let Some(message) = consumer.poll(POLL) {
                            message.context("watching the output topic")?;
                            return Ok(Some(Instant::now()));
                        }
                    }
                    Ok(None)
                }))
            }
            Output::Table(keyspace) => {
                let session = SessionBuilder::new()
                    .known_nodes(env.cassandra_contact_points.split(','))
                    .build()
                    .await
                    .context("connecting the output watcher to Cassandra")?;
                let query = format!("SELECT listing_key FROM {keyspace}.listings LIMIT 1");
                Some(tokio::spawn(async move {
                    while !stopped.load(Ordering::Relaxed) {
                        let rows = session.query_unpaged(query.as_str(), &[]).await?;
                        if rows.into_rows_result()?.rows_num() > 0 {
                            return Ok(Some(Instant::now()));
                        }
                        tokio::time::sleep(POLL).await;
                    }
                    Ok(None)
                }))
            }
            Output::Unwatched => None,
        };
        Ok(Self { stop, task })
    }

    /// How long after `started` the output was first seen; None if it was not seen
    /// (or not watched). Stops the watch.
    ///
    /// # Errors
    /// When the watch failed.
    pub(crate) async fn seconds_after(mut self, started: Instant) -> Result<Option<f64>> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(task) = self.task.take() else {
            return Ok(None);
        };
        Ok(task
            .await??
            .map(|seen| seen.saturating_duration_since(started).as_secs_f64()))
    }
}

impl Drop for Watch {
    /// A watch left on an error path stops too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
