//! The DeltaSink's loop: records in chunks of what the consumer already fetched
//! become rows written into the table's files; the flush policy makes a commit; a
//! rebalance, a conflict or a failed upload drops what is not committed and reads
//! those partitions again from where they were; a partition's first record at or below
//! the table's offset moves it past that offset.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use homestream_common::shutdown::Shutdown;
use homestream_crds::deltasink::validate::{ValidatedFlush, ValidatedVacuum};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

use super::metrics::LakeMetrics;
use super::rows::Rows;
use super::table::{CommitError, LakeWriter};
use super::{DeltaContext, DeltaSinkError, INITIAL_BACKOFF, MAX_BACKOFF};
use crate::stream::dead_letter;
use crate::stream::error_chain;
use crate::stream::metrics::StreamMetrics;

/// Most records taken from the consumer's queue for one conversion to Arrow.
const CHUNK_RECORDS: usize = 4096;
/// Bound on delivering a dead-letter record.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on moving a partition's read position.
const SEEK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the flush interval and vacuum schedule are looked at, at most.
const MAX_TICK: Duration = Duration::from_secs(1);

/// Waits that double from [`INITIAL_BACKOFF`] to [`MAX_BACKOFF`].
pub(super) struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(INITIAL_BACKOFF)
    }
}

impl Backoff {
    /// Waits the next backoff; false when shutdown came first.
    pub(super) async fn wait(&mut self, shutdown: &mut Shutdown) -> bool {
        let wait = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        tokio::select! {
            () = shutdown.requested() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }
}

/// What was read since the last commit.
#[derive(Default)]
struct Pending {
    /// Records read (rows and refused records), and their payload bytes.
    records: usize,
    bytes: usize,
    /// Rows written, each with when it was received and its Kafka timestamp.
    rows: Vec<(Instant, Option<i64>)>,
    /// When the oldest record was read.
    since: Option<Instant>,
    /// Per partition, the first offset read (where to read again from) and the last.
    first: BTreeMap<i32, i64>,
    last: BTreeMap<i32, i64>,
}

impl Pending {
    fn due(&self, flush: &ValidatedFlush) -> bool {
        self.records >= flush.rows.get()
            || self.bytes >= flush.bytes
            || self
                .since
                .is_some_and(|since| since.elapsed() >= flush.interval)
    }
}

/// The sink's loop and everything it holds.
pub(super) struct DeltaPipeline {
    pub(super) consumer: StreamConsumer<DeltaContext>,
    pub(super) rebalanced: Arc<AtomicBool>,
    pub(super) lake: LakeWriter,
    pub(super) rows: Rows,
    pub(super) topic: String,
    pub(super) flush: ValidatedFlush,
    pub(super) vacuum: Option<ValidatedVacuum>,
    pub(super) dead_letter: Option<(FutureProducer, String)>,
    pub(super) metrics: StreamMetrics,
    pub(super) lake_metrics: LakeMetrics,
}

/// The pipeline without its consumer, which the record stream borrows.
struct Writer {
    lake: LakeWriter,
    rows: Rows,
    topic: String,
    dead_letter: Option<(FutureProducer, String)>,
    metrics: StreamMetrics,
    lake_metrics: LakeMetrics,
    /// Partitions whose read position was checked against the table since it was last
    /// read: the first record of each after an assignment or a reload.
    positioned: HashSet<i32>,
    shutdown: Shutdown,
}

impl DeltaPipeline {
    pub(super) async fn run(self, mut shutdown: Shutdown) -> Result<(), DeltaSinkError> {
        let Self {
            consumer,
            rebalanced,
            lake,
            rows,
            topic,
            flush,
            vacuum,
            dead_letter,
            metrics,
            lake_metrics,
        } = self;
        let mut writer = Writer {
            lake,
            rows,
            topic,
            dead_letter,
            metrics,
            lake_metrics,
            positioned: HashSet::new(),
            shutdown: shutdown.clone(),
        };
        let mut pending = Pending::default();
        let mut tick = tokio::time::interval(flush.interval.min(MAX_TICK));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_vacuum = Instant::now();
        let mut messages = consumer.stream();
        let requested = shutdown.requested();
        tokio::pin!(requested);
        loop {
            tokio::select! {
                biased;
                () = &mut requested => break,
                _ = tick.tick() => {
                    if let Some(reason) = consumer.context().refused.reason() {
                        return Err(DeltaSinkError::Refused { reason: reason.to_owned() });
                    }
                    if pending.due(&flush) {
                        writer.commit(&consumer, &mut pending).await;
                    }
                    if let Some(vacuum) = vacuum
                        && last_vacuum.elapsed() >= vacuum.interval
                    {
                        last_vacuum = Instant::now();
                        writer.vacuum(&consumer, vacuum).await;
                    }
                }
                Some(first) = messages.next() => {
                    let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
                    let mut next = Some(first);
                    while let Some(received) = next {
                        match received {
                            Ok(message) => chunk.push(message),
                            Err(error) => tracing::warn!(%error, "Consumer error."),
                        }
                        next = if chunk.len() < CHUNK_RECORDS {
                            messages.next().now_or_never().flatten()
                        } else {
                            None
                        };
                    }
                    if rebalanced.swap(false, Ordering::AcqRel) {
                        // Whatever was read before the rebalance, this chunk included,
                        // is dropped and read again from where each partition was:
                        // its new owner, or this pod after a seek, writes it once.
                        for message in &chunk {
                            pending.first.entry(message.partition()).or_insert(message.offset());
                        }
                        writer.read_again(&consumer, &mut pending).await;
                        continue;
                    }
                    writer.take(&consumer, chunk, &mut pending).await?;
                    if pending.due(&flush) {
                        writer.commit(&consumer, &mut pending).await;
                    }
                }
            }
        }
        // What is not committed is abandoned: the table does not hold it, so it is
        // read again by whoever consumes the partitions next.
        tracing::info!(uncommitted = pending.records, "Delta sink stopped.");
        Ok(())
    }
}

impl Writer {
    /// Writes a chunk of records as rows, skipping what the table already holds and
    /// refusing what cannot be a row.
    async fn take(
        &mut self,
        consumer: &StreamConsumer<DeltaContext>,
        chunk: Vec<BorrowedMessage<'_>>,
        pending: &mut Pending,
    ) -> Result<(), DeltaSinkError> {
        let received = Instant::now();
        // Where to read again from covers the whole chunk before any of it is
        // handled, so that a failure midway loses none of it.
        for message in &chunk {
            pending
                .first
                .entry(message.partition())
                .or_insert(message.offset());
        }
        let mut projected = Vec::with_capacity(chunk.len());
        let mut kept = Vec::with_capacity(chunk.len());
        // Partitions sought past the table's offset in this chunk: the rest of their
        // records here come again from the new position.
        let mut sought = HashSet::new();
        for message in &chunk {
            self.metrics.records_in.inc();
            let (partition, offset) = (message.partition(), message.offset());
            if sought.contains(&partition) {
                continue;
            }
            match self.lake.committed_offset(partition).await {
                Ok(Some(committed)) if offset <= committed => {
                    self.lake_metrics.records_skipped.inc();
                    // The first record of a newly assigned partition says where the
                    // consumer group stood; the table says where to go on.
                    if self.positioned.insert(partition) {
                        self.seek(consumer, partition, committed + 1);
                        sought.insert(partition);
                    }
                    continue;
                }
                Ok(_) => {
                    self.positioned.insert(partition);
                }
                Err(error) => {
                    tracing::warn!(
                        error = error_chain(&error),
                        "Reading the table's offsets failed."
                    );
                    self.read_again(consumer, pending).await;
                    return Ok(());
                }
            }
            pending.records += 1;
            pending.bytes += message.payload_len();
            pending.since.get_or_insert(received);
            pending.last.insert(partition, offset);
            match self.rows.project(message.payload().unwrap_or_default()) {
                Ok(row) => {
                    projected.push(row);
                    kept.push(message);
                }
                Err(reason) => self.refuse(message, &reason).await?,
            }
        }
        let (batch, refused) = self
            .rows
            .decode(&projected)
            .map_err(DeltaSinkError::Decoder)?;
        for (index, reason) in &refused {
            self.refuse(kept[*index], reason).await?;
        }
        let Some(batch) = batch else { return Ok(()) };
        if let Err(error) = self.lake.write(batch).await {
            tracing::warn!(
                error = error_chain(&error),
                "Writing rows failed; reading them again."
            );
            self.read_again(consumer, pending).await;
            return Ok(());
        }
        let mut refused = refused.iter().map(|(index, _)| *index).peekable();
        for (index, message) in kept.iter().enumerate() {
            if refused.next_if_eq(&index).is_none() {
                pending
                    .rows
                    .push((received, message.timestamp().to_millis()));
            }
        }
        Ok(())
    }

    /// Sends a record that cannot be a row to the dead-letter topic, or drops it.
    async fn refuse(
        &self,
        message: &BorrowedMessage<'_>,
        reason: &str,
    ) -> Result<(), DeltaSinkError> {
        let Some((producer, topic)) = &self.dead_letter else {
            tracing::warn!(
                reason,
                partition = message.partition(),
                offset = message.offset(),
                "Record dropped: it cannot become a row."
            );
            self.metrics.records_dropped.inc();
            return Ok(());
        };
        producer
            .send(
                dead_letter::record(message, topic, reason),
                Timeout::After(DEAD_LETTER_TIMEOUT),
            )
            .await
            .map_err(|(source, _)| DeltaSinkError::DeadLetter {
                topic: topic.clone(),
                partition: message.partition(),
                offset: message.offset(),
                source,
            })?;
        self.metrics.records_dead_lettered.inc();
        Ok(())
    }

    /// Commits what is pending as one table version, retrying storage failures for as
    /// long as they last (or until shutdown, which abandons it).
    async fn commit(&mut self, consumer: &StreamConsumer<DeltaContext>, pending: &mut Pending) {
        if pending.last.is_empty() {
            return;
        }
        let started = Instant::now();
        let staged = match self.lake.stage(&pending.last).await {
            Ok(staged) => staged,
            Err(error) => {
                self.metrics.retries.inc();
                tracing::warn!(
                    error = error_chain(&error),
                    "Writing files failed; reading the records again."
                );
                self.read_again(consumer, pending).await;
                return;
            }
        };
        let mut backoff = Backoff::default();
        let version = loop {
            match self.lake.commit(&staged, &pending.last).await {
                Ok(version) => break version,
                Err(CommitError::Conflict(error)) => {
                    self.lake_metrics.conflicts.inc();
                    tracing::warn!(
                        error = error_chain(&error),
                        "Another writer committed these partitions first; reading them again from the table's offsets."
                    );
                    self.read_again(consumer, pending).await;
                    return;
                }
                Err(CommitError::Storage(error)) => {
                    self.metrics.retries.inc();
                    tracing::warn!(error = error_chain(&error), "Committing failed; retrying.");
                    if !backoff.wait(&mut self.shutdown).await {
                        return;
                    }
                }
            }
        };
        let now = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.lake_metrics
            .commit_seconds
            .observe(now.duration_since(started).as_secs_f64());
        self.lake_metrics.commits.inc();
        self.lake_metrics.files.inc_by(staged.files as u64);
        self.lake_metrics.bytes.inc_by(staged.bytes);
        self.lake_metrics
            .table_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        self.metrics.records_out.inc_by(pending.rows.len() as u64);
        for (received, timestamp) in &pending.rows {
            self.metrics.observe_committed(
                now.saturating_duration_since(*received),
                *timestamp,
                now_ms,
            );
        }
        tracing::debug!(
            version,
            records = pending.records,
            files = staged.files,
            "Committed."
        );
        // The group's offsets follow the table, for lag and for where a restart reads
        // from; the table's offsets stay the truth.
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in &pending.last {
            if let Err(error) =
                offsets.add_partition_offset(&self.topic, *partition, Offset::Offset(offset + 1))
            {
                tracing::debug!(%error, "Listing an offset to commit failed.");
            }
        }
        if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
            tracing::debug!(%error, "Committing offsets to Kafka failed; the table holds them.");
        }
        *pending = Pending::default();
    }

    /// Drops what is not committed, reads the table again (retrying until storage
    /// answers) and moves each partition read since the last commit back to where it
    /// was, so that what the table does not hold is read again.
    async fn read_again(&mut self, consumer: &StreamConsumer<DeltaContext>, pending: &mut Pending) {
        let mut backoff = Backoff::default();
        while let Err(error) = self.lake.reload().await {
            self.metrics.retries.inc();
            tracing::warn!(
                error = error_chain(&error),
                "Reading the table failed; retrying."
            );
            if !backoff.wait(&mut self.shutdown).await {
                return;
            }
        }
        self.positioned.clear();
        if let Some(version) = self.lake.version() {
            self.lake_metrics
                .table_version
                .set(i64::try_from(version).unwrap_or(i64::MAX));
        }
        for (partition, offset) in &pending.first {
            self.seek(consumer, *partition, *offset);
        }
        *pending = Pending::default();
    }

    /// Moves a partition's read position; a partition no longer assigned is left to
    /// its new owner.
    fn seek(&self, consumer: &StreamConsumer<DeltaContext>, partition: i32, offset: i64) {
        if let Err(error) =
            consumer.seek(&self.topic, partition, Offset::Offset(offset), SEEK_TIMEOUT)
        {
            tracing::debug!(%error, partition, offset, "Seeking failed (partition not assigned).");
        }
    }

    /// Vacuums the table when this process reads partition 0, so that one pod of the
    /// sink does it.
    async fn vacuum(&mut self, consumer: &StreamConsumer<DeltaContext>, vacuum: ValidatedVacuum) {
        let owns_partition_zero = consumer
            .assignment()
            .is_ok_and(|assignment| assignment.find_partition(&self.topic, 0).is_some());
        if !owns_partition_zero {
            return;
        }
        match self.lake.vacuum(vacuum.retention).await {
            Ok(removed) => {
                self.lake_metrics.files_vacuumed.inc_by(removed as u64);
                tracing::info!(removed, "Vacuumed the table.");
            }
            Err(error) => tracing::warn!(
                error = error_chain(&error),
                "Vacuum failed; it runs again at the next interval."
            ),
        }
    }
}
