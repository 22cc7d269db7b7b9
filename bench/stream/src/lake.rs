//! The DeltaSink's round: the cleaned records appended to a Delta table on the stack's
//! S3 by the DeltaSink (exactly once, a `txn` per partition) and, side by side, by the
//! Python a team would otherwise write (confluent-kafka, pyarrow, write_deltalake; at
//! least once), each into a fresh table partitioned by scrape date. Latency here is a
//! commit's: from the start of a flush to its log entry.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use homestream_common::lake;
use homestream_crds::DeltaSinkSpec;
use homestream_tests::{StackEnv, random_name};
use serde_json::{Value, json};

use crate::bare::COLUMNS;
use crate::child::{Component, measure_component, self_report};
use crate::first_output::Output;
use crate::table::Table;

/// Rows per commit, for both writers: the DeltaSink's default.
const FLUSH_ROWS: usize = 100_000;
/// The longest a record waits for its commit, for both writers. Neither knows how many
/// records are coming, so the last, partial commit waits for it: short, so that the
/// wall time measures writing rather than waiting.
const FLUSH_SECONDS: u64 = 5;
pub(crate) const DELTA_SINK: &str = "DeltaSink (exactlyOnce, txn)";
pub(crate) const PYTHON_BASELINE: &str = "Python: pyarrow + write_deltalake";

/// The DeltaSink spec over the cleaned records: the CassandraSink's columns as Delta
/// types, the scrape time as a timestamp and, derived from it, the partition date.
fn spec(input: &str, location: &str) -> Value {
    let mut columns: Vec<Value> = COLUMNS
        .iter()
        .filter(|(name, _)| *name != "scraped_at")
        .map(|(name, cql)| {
            let lake_type = match *cql {
                "bigint" => "long",
                "int" => "int",
                _ => "string",
            };
            json!({"name": name, "type": lake_type})
        })
        .collect();
    columns.push(json!({"name": "scraped_at", "type": "timestamp"}));
    columns.push(json!({"name": "scraped_date", "type": "date", "field": "scraped_at"}));
    json!({
        "input": {"topic": input, "consumerGroup": random_name("bench-delta")},
        "table": {"location": location, "columns": columns, "partitionBy": ["scraped_date"]},
        "flush": {"rows": FLUSH_ROWS, "interval": format!("{FLUSH_SECONDS}s")},
    })
}

/// Measures the DeltaSink and the Python baseline, each reading `input` (the cleaned
/// records) into a table of its own, and counts the files each wrote.
pub(crate) async fn measure_delta(
    exe: &Path,
    env: &StackEnv,
    input: &str,
    records: usize,
    table: &mut Table,
) -> Result<()> {
    let location = env.lake.location("bench-delta");
    let spec = spec(input, &location);
    let validated = serde_json::from_value::<DeltaSinkSpec>(spec.clone())?.validate()?;
    let options = lake::storage_options(
        &serde_json::from_value(env.lake.resolved())?,
        Some(&lake::S3Key {
            access_key_id: env.lake.access_key_id.clone(),
            secret_access_key: env.lake.secret_access_key.clone(),
        }),
    );
    lake::create(
        &validated.location,
        options.clone(),
        &validated.columns,
        &validated.partition_by,
    )
    .await
    .context("creating the benchmark's table")?;
    eprintln!("DeltaSink...");
    let delta_sink = Component {
        mode: "run-delta-sink",
        kind: "DeltaSink",
        spec: &spec,
        replicas: 1,
        latency_histogram: "homestream_delta_commit_seconds",
        output: Output::Unwatched,
    };
    let measured = measure_component(exe, env, &delta_sink, records).await?;
    table.record(DELTA_SINK, measured, Some(PYTHON_BASELINE));
    eprintln!(
        "  {} data files, {}",
        files(&validated.location, &options).await?,
        location
    );

    eprintln!("Python baseline (confluent-kafka, pyarrow, write_deltalake)...");
    let baselines = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines");
    let python = String::from_utf8(Command::new(baselines.join("venv.sh")).output()?.stdout)?;
    let python_location = env.lake.location("bench-pyarrow");
    let measured = self_report(
        Command::new(python.trim())
            .arg(baselines.join("delta_pyarrow.py"))
            .args([&env.kafka_bootstrap, input, &python_location])
            .args([
                records.to_string(),
                FLUSH_ROWS.to_string(),
                FLUSH_SECONDS.to_string(),
            ])
            .envs(&options),
    )?;
    table.record(PYTHON_BASELINE, measured, None);
    let python_table = homestream_crds::format::location::S3Location(python_location.clone());
    eprintln!(
        "  {} data files, {}",
        files(&python_table, &options).await?,
        python_location
    );
    Ok(())
}

/// Data files in the table's current version.
async fn files(
    location: &homestream_crds::format::location::S3Location,
    options: &std::collections::HashMap<String, String>,
) -> Result<usize> {
    let table = lake::open(location, options.clone())
        .await?
        .context("no table")?;
    Ok(table.get_file_uris()?.count())
}
