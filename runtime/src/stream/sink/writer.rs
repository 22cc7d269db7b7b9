//! The Cassandra side of the sink: a session, the prepared insert and unlogged
//! batches of it, rows grouped by the replica that owns them, retries with backoff.

use std::time::Duration;

use futures::future::join_all;
use homestream_crds::cassandrasink::{Consistency, ValidatedCassandraSink};
use homestream_crds::runtime::{CASSANDRA_PASSWORD_ENV, CASSANDRA_USERNAME_ENV, ResolvedCassandra};
use prometheus_client::metrics::counter::Counter;
use rdkafka::message::{BorrowedMessage, Message};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::batch::{Batch, BatchStatement, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::row::{Row, RowMapper};
use crate::stream::error_chain;

use super::outcomes::now_ms;
use super::{INITIAL_BACKOFF, MAX_BACKOFF, SinkError};

/// Driver-side bound on one write attempt.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The Cassandra side: a session, the prepared insert, and unlogged batches of it.
pub(super) struct Writer {
    pub(super) session: Session,
    pub(super) insert: PreparedStatement,
    /// `batches[n - 2]` is a batch of `n` inserts, for `n` from 2 to `batchRows`.
    pub(super) batches: Vec<Batch>,
    pub(super) keyspace: String,
    pub(super) table: String,
    pub(super) mapper: RowMapper,
    pub(super) retries: Counter,
}

impl Writer {
    pub(super) async fn connect(
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
    pub(super) async fn write_records(
        &self,
        messages: &[BorrowedMessage<'_>],
    ) -> Vec<Result<(), String>> {
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
    pub(super) fn by_replica<'r>(&self, rows: Vec<(usize, Row<'r>)>) -> Vec<Vec<(usize, Row<'r>)>> {
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
    pub(super) async fn write_group(&self, group: &[(usize, Row<'_>)]) -> Vec<Result<(), String>> {
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
    pub(super) async fn write(&self, row: &Row<'_>) -> Result<(), String> {
        self.retrying(|| self.session.execute_unpaged(&self.insert, row))
            .await
    }

    /// Makes a request until Cassandra takes it or refuses it for good, waiting with
    /// backoff between attempts; `Err` is why it was refused (a record error).
    pub(super) async fn retrying<F, R>(&self, mut request: impl FnMut() -> F) -> Result<(), String>
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
pub(super) fn group_by<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
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
pub(super) fn is_record_error(error: &ExecutionError) -> bool {
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

pub(super) fn consistency(consistency: Consistency) -> scylla::statement::Consistency {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn groups_keep_first_seen_order() {
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
