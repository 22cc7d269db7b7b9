//! Delta tables on S3-compatible storage, as the operator and the DeltaSink both open
//! them: the storage options from the resolved connection ([`storage_options`]), the
//! table's schema from the declared columns ([`schema`]), and opening a table that may
//! not exist yet ([`open`]).

mod s3;
pub mod schema;

use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use homestream_crds::format::location::S3Location;
use homestream_crds::runtime::ResolvedS3;
use std::collections::HashMap;

/// An S3 access key.
#[derive(Clone)]
pub struct S3Key {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Key")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The options `deltalake` (and its `object_store`) reads for a connection. Without a
/// key they are left out, so the AWS credential chain of the process applies (IRSA,
/// instance profile, `AWS_*` variables).
pub fn storage_options(s3: &ResolvedS3, key: Option<&S3Key>) -> HashMap<String, String> {
    let mut options = HashMap::new();
    if let Some(endpoint) = &s3.endpoint {
        options.insert("AWS_ENDPOINT_URL".to_owned(), endpoint.clone());
        if endpoint.starts_with("http://") {
            options.insert("AWS_ALLOW_HTTP".to_owned(), "true".to_owned());
        }
    }
    if let Some(region) = &s3.region {
        options.insert("AWS_REGION".to_owned(), region.clone());
    }
    options.insert(
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST".to_owned(),
        (!s3.path_style).to_string(),
    );
    if let Some(key) = key {
        options.insert("AWS_ACCESS_KEY_ID".to_owned(), key.access_key_id.clone());
        options.insert(
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            key.secret_access_key.clone(),
        );
    }
    options
}

/// Opens the table at `location`: loaded when it exists (`Some`), `None` when there is
/// no Delta log there yet.
///
/// # Errors
/// When the location is not a URL or storage cannot be read (unreachable, refused
/// credentials, a missing bucket).
pub async fn open(
    location: &S3Location,
    options: HashMap<String, String>,
) -> Result<Option<DeltaTable>, DeltaTableError> {
    let mut table = builder(location, options)?.build()?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A table handle at `location` that is not loaded: for creating the table.
///
/// # Errors
/// When the location is not a URL.
pub fn unloaded(
    location: &S3Location,
    options: HashMap<String, String>,
) -> Result<DeltaTable, DeltaTableError> {
    builder(location, options)?.build()
}

fn builder(
    location: &S3Location,
    options: HashMap<String, String>,
) -> Result<DeltaTableBuilder, DeltaTableError> {
    s3::register();
    let url = deltalake::ensure_table_uri(location.as_str())?;
    Ok(DeltaTableBuilder::from_url(url)?.with_storage_options(options))
}

/// The application id of the `txn` action that records how far a DeltaSink committed
/// one Kafka partition: unique per sink and partition, so two sinks may share a table.
pub fn transaction_app_id(namespace: &str, name: &str, topic: &str, partition: i32) -> String {
    format!("homestream/{namespace}/{name}/{topic}/{partition}")
}

/// Creates the table at `location` with `columns` and `partition_by`, failing when a
/// table is already there (so a caller that created it knows the table is its own).
///
/// # Errors
/// When a table exists there already, or storage fails.
pub async fn create(
    location: &S3Location,
    options: HashMap<String, String>,
    columns: &[homestream_crds::deltasink::ValidatedLakeColumn],
    partition_by: &[String],
) -> Result<DeltaTable, DeltaTableError> {
    let mut builder = unloaded(location, options)?
        .create()
        .with_columns(schema::fields(columns)?)
        .with_save_mode(deltalake::protocol::SaveMode::ErrorIfExists);
    if !partition_by.is_empty() {
        builder = builder.with_partition_columns(partition_by.iter().cloned());
    }
    builder.await
}
