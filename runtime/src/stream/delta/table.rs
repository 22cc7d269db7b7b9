//! The sink's handle on its Delta table: rows are written into Parquet files as they
//! come ([`LakeWriter::write`]), and a commit adds those files together with, per Kafka
//! partition, a `txn` action whose version is the last offset the commit holds
//! ([`LakeWriter::stage`], [`LakeWriter::commit`]). The table itself thus records how
//! far each partition is written, in the same atomic step as the rows: whatever
//! crashes or replays happen, an offset at or below a partition's version is in the
//! table already ([`LakeWriter::committed_offset`]).
//!
//! A second writer committing the same partition meanwhile (a zombie after a
//! rebalance) makes the log refuse the commit as a conflict; its files stay
//! unreferenced, invisible to readers, until vacuum removes them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use deltalake::arrow::datatypes::Schema;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use homestream_common::lake;

/// Names the `txn` application id of each partition.
#[derive(Debug, Clone)]
pub struct Writers {
    /// Namespace of the DeltaSink.
    pub namespace: String,
    /// Name of the DeltaSink.
    pub name: String,
    /// The input topic.
    pub topic: String,
}

impl Writers {
    fn app_id(&self, partition: i32) -> String {
        lake::transaction_app_id(&self.namespace, &self.name, &self.topic, partition)
    }
}

/// Files written and ready to commit, kept until the commit lands so that a commit
/// that failed on storage is retried without writing them again.
#[derive(Debug)]
pub struct Staged {
    actions: Vec<Action>,
    /// Data files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another writer committed meanwhile in a way this commit cannot be put after
    /// (the same partition's `txn`): the staged files must be dropped and the
    /// partitions read again from where the table says.
    #[error("another writer committed to the table first: {0}")]
    Conflict(DeltaTableError),
    /// Storage failed or refused: retry later.
    #[error(transparent)]
    Storage(#[from] DeltaTableError),
}

/// The table as the sink writes it.
pub struct LakeWriter {
    table: DeltaTable,
    writer: RecordBatchWriter,
    writers: Writers,
    /// Each partition's committed offset as last read from the table (`None`: none yet).
    committed: HashMap<i32, Option<i64>>,
}

impl LakeWriter {
    /// A writer for `table`, which must be loaded.
    ///
    /// # Errors
    /// When the table's schema cannot be read as Arrow.
    pub fn new(table: DeltaTable, writers: Writers) -> Result<Self, DeltaTableError> {
        let writer = RecordBatchWriter::for_table(&table)?;
        Ok(Self {
            table,
            writer,
            writers,
            committed: HashMap::new(),
        })
    }

    /// The Arrow schema rows must have.
    pub fn arrow_schema(&self) -> Arc<Schema> {
        self.writer.arrow_schema()
    }

    /// The table's latest version as this writer knows it.
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// The last offset of `partition` in the table.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub async fn committed_offset(
        &mut self,
        partition: i32,
    ) -> Result<Option<i64>, DeltaTableError> {
        if let Some(offset) = self.committed.get(&partition) {
            return Ok(*offset);
        }
        let offset = self
            .table
            .snapshot()?
            .transaction_version(
                self.table.log_store().as_ref(),
                self.writers.app_id(partition),
            )
            .await?;
        self.committed.insert(partition, offset);
        Ok(offset)
    }

    /// Adds rows to the files being written.
    ///
    /// # Errors
    /// When the batch does not match the table's schema, or a file cannot be written.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), DeltaTableError> {
        self.writer.write(batch).await
    }

    /// Finishes the files being written and pairs them with the partitions' offsets.
    ///
    /// # Errors
    /// When a file cannot be uploaded; the rows are then lost to this writer and must
    /// be read again (see [`LakeWriter::reload`]).
    pub async fn stage(
        &mut self,
        last_offsets: &BTreeMap<i32, i64>,
    ) -> Result<Staged, DeltaTableError> {
        let adds = self.writer.flush().await?;
        let files = adds.len();
        let bytes = adds
            .iter()
            .map(|add| u64::try_from(add.size).unwrap_or(0))
            .sum();
        let now = chrono::Utc::now().timestamp_millis();
        let actions = adds
            .into_iter()
            .map(Action::Add)
            .chain(last_offsets.iter().map(|(partition, offset)| {
                Action::Txn(Transaction::new_with_last_update(
                    self.writers.app_id(*partition),
                    *offset,
                    Some(now),
                ))
            }))
            .collect();
        Ok(Staged {
            actions,
            files,
            bytes,
        })
    }

    /// Commits staged files and offsets as the table's next version.
    ///
    /// # Errors
    /// [`CommitError::Conflict`] when another writer committed one of the partitions
    /// first; [`CommitError::Storage`] otherwise (the same `staged` may be retried).
    pub async fn commit(
        &mut self,
        staged: &Staged,
        last_offsets: &BTreeMap<i32, i64>,
    ) -> Result<u64, CommitError> {
        let snapshot = self.table.snapshot()?;
        let partition_columns: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partition_columns.is_empty()).then_some(partition_columns),
            predicate: None,
        };
        let committed = CommitBuilder::default()
            .with_actions(staged.actions.clone())
            .build(Some(snapshot), self.table.log_store(), operation)
            .await;
        match committed {
            Ok(finalized) => {
                self.table.state = Some(finalized.snapshot());
                for (partition, offset) in last_offsets {
                    self.committed.insert(*partition, Some(*offset));
                }
                Ok(finalized.version())
            }
            Err(
                error @ DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(_),
                },
            ) => Err(CommitError::Conflict(error)),
            Err(error) => Err(CommitError::Storage(error)),
        }
    }

    /// Drops what was written and not committed, and reads the table again (its
    /// schema and every partition's offset), after a conflict, a rebalance, or a
    /// failed upload.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn reload(&mut self) -> Result<(), DeltaTableError> {
        self.writer.reset();
        self.committed.clear();
        self.table.update_state().await?;
        self.writer = RecordBatchWriter::for_table(&self.table)?;
        Ok(())
    }

    /// Removes files no version within `retention` refers to, including those of
    /// commits that failed. Returns how many were removed.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn vacuum(&mut self, retention: Duration) -> Result<usize, DeltaTableError> {
        let retention = chrono::Duration::from_std(retention)
            .map_err(|error| DeltaTableError::Generic(error.to_string()))?;
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(retention)
            // Full: also files never committed (a failed commit's), not only removed ones.
            .with_mode(VacuumMode::Full)
            // The spec bounds retention to at least an hour, below Delta's 7-day guard.
            .with_enforce_retention_duration(false)
            .await?;
        self.table = table;
        Ok(metrics.files_deleted.len())
    }
}
