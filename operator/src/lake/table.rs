//! Talking to object storage about a DeltaSink's table: creating it where the policy
//! allows, adding declared columns under `AddColumns`, refusing every change that
//! would lose or reinterpret data, reading what status shows of it, and deleting it.

use std::collections::HashMap;
use std::error::Error as _;

use deltalake::{DeltaTable, DeltaTableError, ObjectStoreError, Path};
use futures::{StreamExt, TryStreamExt};
use homestream_common::lake::{self, S3Key};
use homestream_crds::deltasink::{ValidatedDeltaSink, ValidatedLakeColumn};
use homestream_crds::format::location::S3Location;
use homestream_crds::runtime::ResolvedS3;
use homestream_crds::schema_policy::SchemaPolicy;
use k8s_openapi::jiff::Timestamp;

use super::credentials::KeyFileError;
use super::diff::{ExistingTable, TableDiff, diff};
use super::failure::StorageFailure;
use super::message;

/// How long one reconcile waits for storage: two quick retries, then the condition
/// says what failed and the resource is requeued with backoff (`object_store`'s own
/// default, ten retries over up to three minutes, would hold the reconcile that long).
const RETRIES: [(&str, &str); 4] = [
    ("max_retries", "2"),
    ("retry_timeout", "10s"),
    ("connect_timeout", "5s"),
    ("timeout", "30s"),
];

/// A failure to talk to storage: transient, retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operator's key files cannot be read.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The table could not be read or changed.
    #[error("{step} {location}: {source}")]
    Table {
        /// What was being done.
        step: &'static str,
        /// The table's location.
        location: String,
        /// The cause (boxed: `deltalake`'s error is large, and this one is returned
        /// on every path).
        source: Box<DeltaTableError>,
    },
    /// The objects under the location could not be listed or deleted.
    #[error("{step} {location}: {source}")]
    Objects {
        /// What was being done.
        step: &'static str,
        /// The table's location.
        location: String,
        /// The cause.
        source: ObjectStoreError,
    },
}

impl StorageError {
    /// The condition reason: `StorageCredentialsUnusable` for the operator's own key
    /// files, else what the storage answered ([`StorageFailure`]).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Key(_) => "StorageCredentialsUnusable",
            other => StorageFailure::of(other).reason(),
        }
    }

    /// The condition message: the error with each cause that adds something, and what
    /// to do; the same text while the failure lasts ([`message::stable`]).
    pub fn message(&self) -> String {
        let advice = match self {
            Self::Key(_) => {
                "mount the operator's S3 key files, or unset them to use its ambient credentials"
            }
            other => StorageFailure::of(other).advice(),
        };
        let mut message = self.to_string();
        let mut cause = self.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            cause = error.source();
        }
        format!("{} ({advice})", message::stable(&message))
    }
}

/// What became of the declared table.
#[derive(Clone, Debug, PartialEq)]
pub enum TableOutcome {
    /// The table exists and matches.
    Ready {
        /// What this reconcile did, for the condition's message.
        action: String,
        /// Whether this reconcile created the table (then it is the operator's to delete).
        created: bool,
        /// What the table holds now.
        stats: TableStats,
    },
    /// The declaration cannot be applied without losing data, or the policy forbids it.
    Refused {
        /// CamelCase reason.
        reason: &'static str,
        /// What differs and what to do.
        message: String,
    },
}

/// What status shows of a table, read from its current version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// The version of the log.
    pub version: i64,
    /// When that version was committed.
    pub committed: Option<Timestamp>,
    /// Rows in the active files, when every file's statistics count them.
    pub rows: Option<i64>,
    /// Active data files.
    pub files: i64,
}

/// The storage options the operator opens tables with: the connection, the operator's
/// own key (else its ambient AWS credentials), and short retries.
pub fn options(s3: &ResolvedS3, key: Option<&S3Key>) -> HashMap<String, String> {
    let mut options = lake::storage_options(s3, key);
    options.extend(RETRIES.map(|(key, value)| (key.to_owned(), value.to_owned())));
    options
}

/// Makes the table at the sink's location match it as far as its `schemaPolicy` allows.
///
/// # Errors
/// When storage cannot be reached or refuses a request.
pub async fn ensure(
    sink: &ValidatedDeltaSink,
    options: &HashMap<String, String>,
) -> Result<TableOutcome, StorageError> {
    let read = table_error("reading the table at", &sink.location);
    let (mut table, mut action, created) = match lake::open(&sink.location, options.clone())
        .await
        .map_err(&read)?
    {
        Some(table) => (table, "matches the spec".to_owned(), false),
        None => match create(sink, options).await? {
            Ok((table, created)) => (table, created_or_found(created), created),
            Err(refused) => return Ok(refused),
        },
    };
    let snapshot = table.snapshot().map_err(&read)?;
    let existing = ExistingTable::new(&snapshot.schema(), snapshot.metadata().partition_columns());
    match diff(sink, &existing) {
        TableDiff::Matches => {}
        TableDiff::Refused { reason, message } => {
            return Ok(TableOutcome::Refused { reason, message });
        }
        TableDiff::MissingColumns(missing) if sink.schema_policy == SchemaPolicy::AddColumns => {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            action = format!("added columns {}", names.join(", "));
            let missing: Vec<ValidatedLakeColumn> = missing.into_iter().cloned().collect();
            let adding = table_error("adding columns to the table at", &sink.location);
            let fields = lake::schema::fields(&missing).map_err(&adding)?;
            table = table
                .add_columns()
                .with_fields(fields)
                .await
                .map_err(&adding)?;
        }
        TableDiff::MissingColumns(missing) => {
            let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
            return Ok(TableOutcome::Refused {
                reason: "ColumnsMissing",
                message: format!(
                    "table {} lacks declared columns {}; schemaPolicy {:?} never alters a table: \
                     set schemaPolicy AddColumns to add them",
                    sink.location,
                    names.join(", "),
                    sink.schema_policy
                ),
            });
        }
    }
    let stats = stats(&table).await.map_err(&read)?;
    Ok(TableOutcome::Ready {
        action,
        created,
        stats,
    })
}

fn created_or_found(created: bool) -> String {
    if created {
        "created"
    } else {
        "matches the spec"
    }
    .to_owned()
}

/// Creates the sink's table where there is none: the table and whether this call made
/// it (`false`: another writer made it meanwhile, so it is not the operator's to
/// delete), or why it must not be made.
async fn create(
    sink: &ValidatedDeltaSink,
    options: &HashMap<String, String>,
) -> Result<Result<(DeltaTable, bool), TableOutcome>, StorageError> {
    let location = &sink.location;
    // Listing first also tells a missing bucket (S3 answers NoSuchBucket) from a
    // missing table.
    if let Some(object) = first_object(location, options).await? {
        return Ok(Err(TableOutcome::Refused {
            reason: "LocationNotEmpty",
            message: format!(
                "{location} holds objects (e.g. {object}) but no Delta table: homestream \
                 creates a table only in an empty location, since vacuum and deletionPolicy \
                 Delete remove what is under it; choose another location or empty this one"
            ),
        }));
    }
    if sink.schema_policy == SchemaPolicy::Unmanaged {
        return Ok(Err(TableOutcome::Refused {
            reason: "TableMissing",
            message: format!(
                "there is no Delta table at {location} and schemaPolicy is Unmanaged: create \
                 it, or use Create"
            ),
        }));
    }
    match lake::create(location, options.clone(), &sink.columns, &sink.partition_by).await {
        Ok(table) => Ok(Ok((table, true))),
        // Another writer may have created it since the log was read: then it is theirs.
        Err(error) => match lake::open(location, options.clone()).await {
            Ok(Some(table)) => Ok(Ok((table, false))),
            _ => Err(table_error("creating the table at", location)(error)),
        },
    }
}

/// The first object under `location`, if any.
async fn first_object(
    location: &S3Location,
    options: &HashMap<String, String>,
) -> Result<Option<Path>, StorageError> {
    let store = lake::unloaded(location, options.clone())
        .map_err(table_error("opening", location))?
        .object_store();
    let first = store.list(None).next().await.transpose();
    first
        .map(|object| object.map(|object| object.location))
        .map_err(objects_error("listing the objects under", location))
}

/// What status shows of the table's current version.
async fn stats(table: &DeltaTable) -> Result<TableStats, DeltaTableError> {
    let snapshot = table.snapshot()?;
    let version = snapshot.version();
    let log = snapshot.log_data();
    let rows: Option<usize> = log.iter().map(|file| file.num_records()).sum();
    let committed_millis = match table.history(Some(1)).try_next().await? {
        Some(commit) => commit.timestamp,
        None => None,
    }
    .or_else(|| snapshot.version_timestamp(version));
    Ok(TableStats {
        version: i64::try_from(version).unwrap_or(i64::MAX),
        committed: committed_millis.and_then(|millis| Timestamp::from_millisecond(millis).ok()),
        rows: rows.map(|rows| i64::try_from(rows).unwrap_or(i64::MAX)),
        files: i64::try_from(log.num_files()).unwrap_or(i64::MAX),
    })
}

/// Deletes every object under `location` (deletionPolicy `Delete` of a table the
/// operator created): the log, the data files, and files of failed commits. Returns
/// how many there were.
///
/// # Errors
/// When storage cannot be reached or refuses a listing or a deletion.
pub async fn delete(
    location: &S3Location,
    options: &HashMap<String, String>,
) -> Result<usize, StorageError> {
    let store = lake::unloaded(location, options.clone())
        .map_err(table_error("opening", location))?
        .object_store();
    let objects: Vec<Path> = store
        .list(None)
        .map_ok(|object| object.location)
        .try_collect()
        .await
        .map_err(objects_error("listing the objects under", location))?;
    let count = objects.len();
    store
        .delete_stream(futures::stream::iter(objects.into_iter().map(Ok)).boxed())
        .try_collect::<Vec<Path>>()
        .await
        .map_err(objects_error("deleting the objects under", location))?;
    Ok(count)
}

fn table_error(
    step: &'static str,
    location: &S3Location,
) -> impl Fn(DeltaTableError) -> StorageError {
    let location = location.as_str().to_owned();
    move |source| StorageError::Table {
        step,
        location: location.clone(),
        source: Box::new(source),
    }
}

fn objects_error(
    step: &'static str,
    location: &S3Location,
) -> impl Fn(ObjectStoreError) -> StorageError {
    let location = location.as_str().to_owned();
    move |source| StorageError::Objects {
        step,
        location: location.clone(),
        source,
    }
}
