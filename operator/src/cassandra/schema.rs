//! Talking to Cassandra about a CassandraSink's keyspace and table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use homestream_crds::cassandrasink::{SchemaPolicy, ValidatedCassandraSink};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use tokio::sync::Mutex;

use super::ddl;
use super::diff::{ExistingColumn, TableDiff, diff};

/// A failure to talk to Cassandra: transient, retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum CassandraError {
    /// No session could be opened.
    #[error("connecting to Cassandra at {contact_points}: {source}")]
    Connect {
        /// The contact points tried.
        contact_points: String,
        /// The cause.
        source: Box<scylla::errors::NewSessionError>,
    },
    /// A statement failed.
    #[error("{statement}: {source}")]
    Statement {
        /// The statement, for the message.
        statement: String,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What became of the declared schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaOutcome {
    /// Keyspace and table exist and match.
    Ready {
        /// What this reconcile did, for the condition's message.
        action: String,
        /// Whether this reconcile created the table (then it is the operator's to drop).
        created: bool,
    },
    /// The declaration cannot be applied without losing data, or the policy forbids it.
    Refused {
        /// CamelCase reason.
        reason: &'static str,
        /// What differs and what to do.
        message: String,
    },
}

/// Open sessions by contact points, so reconciles don't reconnect every time.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<Vec<String>, Arc<Session>>>,
}

impl Sessions {
    /// A session for `contact_points`, opened on first use.
    ///
    /// # Errors
    /// When no contact point answers.
    pub async fn get(&self, contact_points: &[String]) -> Result<Arc<Session>, CassandraError> {
        let mut open = self.open.lock().await;
        if let Some(session) = open.get(contact_points) {
            return Ok(session.clone());
        }
        let session = SessionBuilder::new()
            .known_nodes(contact_points)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .map_err(|source| CassandraError::Connect {
                contact_points: contact_points.join(","),
                source: Box::new(source),
            })?;
        let session = Arc::new(session);
        open.insert(contact_points.to_vec(), session.clone());
        Ok(session)
    }
}

async fn execute(session: &Session, statement: String) -> Result<(), CassandraError> {
    session
        .query_unpaged(statement.as_str(), &[])
        .await
        .map_err(|source| CassandraError::Statement {
            statement,
            source: Box::new(source),
        })?;
    Ok(())
}

/// Creates the sink's table; `false` when it exists already (made by someone else since
/// the columns were read, so not the operator's to drop).
async fn create_table(
    session: &Session,
    sink: &ValidatedCassandraSink,
) -> Result<bool, CassandraError> {
    match execute(session, ddl::create_table(sink)).await {
        Ok(()) => Ok(true),
        Err(CassandraError::Statement { source, .. })
            if matches!(
                source.downcast_ref::<ExecutionError>(),
                Some(ExecutionError::LastAttemptError(
                    RequestAttemptError::DbError(DbError::AlreadyExists { .. }, _)
                ))
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

async fn existing_columns(
    session: &Session,
    sink: &ValidatedCassandraSink,
) -> Result<Vec<ExistingColumn>, CassandraError> {
    let statement = "SELECT column_name, type, kind, position, clustering_order FROM system_schema.columns \
                     WHERE keyspace_name = ? AND table_name = ?";
    let boxed = |source: Box<dyn std::error::Error + Send + Sync>| CassandraError::Statement {
        statement: statement.to_owned(),
        source,
    };
    let rows = session
        .query_unpaged(statement, (&sink.keyspace, &sink.table))
        .await
        .map_err(|e| boxed(Box::new(e)))?
        .into_rows_result()
        .map_err(|e| boxed(Box::new(e)))?;
    rows.rows::<(String, String, String, i32, String)>()
        .map_err(|e| boxed(Box::new(e)))?
        .map(|row| {
            row.map(
                |(name, cql_type, kind, position, clustering_order)| ExistingColumn {
                    name,
                    cql_type,
                    kind,
                    position,
                    clustering_order,
                },
            )
            .map_err(|e| boxed(Box::new(e)))
        })
        .collect()
}

/// Makes the keyspace and table match `sink` as far as its `schemaPolicy` allows.
///
/// # Errors
/// When Cassandra cannot be reached or a statement fails.
pub async fn ensure(
    session: &Session,
    sink: &ValidatedCassandraSink,
) -> Result<SchemaOutcome, CassandraError> {
    let mut existing = existing_columns(session, sink).await?;
    let mut action = "matches the spec".to_owned();
    let mut created = false;
    if existing.is_empty() {
        if sink.schema_policy == SchemaPolicy::Unmanaged {
            return Ok(SchemaOutcome::Refused {
                reason: "TableMissing",
                message: format!(
                    "table {}.{} does not exist and schemaPolicy is Unmanaged: create it, or use Create",
                    sink.keyspace, sink.table
                ),
            });
        }
        execute(session, ddl::create_keyspace(sink)).await?;
        created = create_table(session, sink).await?;
        existing = existing_columns(session, sink).await?;
        if created {
            action = "created".to_owned();
        }
    }
    match diff(sink, &existing) {
        TableDiff::Matches => Ok(SchemaOutcome::Ready { action, created }),
        TableDiff::Refused { reason, message } => Ok(SchemaOutcome::Refused { reason, message }),
        TableDiff::MissingColumns(missing) if sink.schema_policy == SchemaPolicy::AddColumns => {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            for column in &missing {
                execute(session, ddl::add_column(sink, column)).await?;
            }
            Ok(SchemaOutcome::Ready {
                action: format!("added columns {}", names.join(", ")),
                created,
            })
        }
        TableDiff::MissingColumns(missing) => {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            Ok(SchemaOutcome::Refused {
                reason: "ColumnsMissing",
                message: format!(
                    "table {}.{} lacks declared columns {}; schemaPolicy {:?} never alters a table: \
                     set schemaPolicy AddColumns to add them",
                    sink.keyspace,
                    sink.table,
                    names.join(", "),
                    sink.schema_policy
                ),
            })
        }
    }
}

/// Drops the sink's table (deletionPolicy `Delete`); the keyspace stays, it may hold
/// other tables.
///
/// # Errors
/// When Cassandra cannot be reached or refuses.
pub async fn drop_table(
    session: &Session,
    sink: &ValidatedCassandraSink,
) -> Result<(), CassandraError> {
    execute(session, ddl::drop_table(sink)).await
}
