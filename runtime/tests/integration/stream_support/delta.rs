//! Helpers of the DeltaSink tests: a sink spec over the cleaned records, its table
//! created as the operator creates it, the sink started with the stack's S3 key, and
//! waiting until DuckDB reads a number of rows.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result};
use homestream_common::lake::{self, S3Key};
use homestream_crds::DeltaSinkSpec;
use homestream_crds::runtime::ResolvedS3;
use homestream_tests::StackEnv;
use serde_json::{Value, json};

/// A DeltaSink spec over [`super::cleaned`] records: every kind of column, a date
/// partition derived from the scrape time, small frequent commits.
pub fn delta_spec(input: &str, location: &str, dead_letter: &str) -> Value {
    json!({
        "input": {"topic": input},
        "table": {
            "location": location,
            "columns": [
                {"name": "listing_key", "type": "string", "required": true},
                {"name": "monthly_price_minor", "type": "long"},
                {"name": "deposit", "type": "decimal(10,2)"},
                {"name": "furnished", "type": "boolean"},
                {"name": "available", "type": "date"},
                {"name": "tags", "type": "array<string>"},
                {"name": "rooms", "type": "map<string,int>"},
                {"name": "scraped_at", "type": "timestamp", "jsonPath": "$._meta.scrapedAt"},
                {"name": "scraped_date", "type": "date", "jsonPath": "$._meta.scrapedAt"}
            ],
            "partitionBy": ["scraped_date"]
        },
        "flush": {"rows": 5000, "interval": "1s"},
        "deadLetter": {"topic": {"name": dead_letter}}
    })
}

/// The storage options of the stack's S3 with its root key.
pub fn storage_options(env: &StackEnv) -> std::collections::HashMap<String, String> {
    let resolved: ResolvedS3 =
        serde_json::from_value(env.lake.resolved()).expect("a resolved S3 connection");
    lake::storage_options(
        &resolved,
        Some(&S3Key {
            access_key_id: env.lake.access_key_id.clone(),
            secret_access_key: env.lake.secret_access_key.clone(),
        }),
    )
}

/// Creates the table of `spec` as the operator does.
pub async fn create_delta_table(env: &StackEnv, spec: &Value) -> Result<deltalake::DeltaTable> {
    let spec: DeltaSinkSpec = serde_json::from_value(spec.clone())?;
    let validated = spec.validate()?;
    lake::create(
        &validated.location,
        storage_options(env),
        &validated.columns,
        &validated.partition_by,
    )
    .await
    .context("creating the Delta table")
}

/// Starts `homestream-runtime sink` for the DeltaSink in `config`, with the key.
pub fn start_delta(
    env: &StackEnv,
    config: &PathBuf,
    instance: &str,
    listen: &str,
) -> Result<Child> {
    super::command("sink", config, instance, listen)
        .envs(env.lake.credential_env())
        .spawn()
        .context("starting homestream-runtime sink")
}

/// Polls DuckDB until the table at `location` has at least `n` rows or `timeout`
/// passed, then returns `(rows, distinct listing keys)`.
pub async fn lake_rows_within(
    env: &StackEnv,
    location: &str,
    n: usize,
    timeout: Duration,
) -> Result<(i64, i64)> {
    let n = i64::try_from(n)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let counts = env.lake.count(location, "listing_key").await?;
        if counts.0 >= n || tokio::time::Instant::now() > deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
