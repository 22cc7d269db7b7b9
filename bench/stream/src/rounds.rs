//! A benchmark run: the records produced once; then each round measures every row as
//! child processes, one after the other (the bare loops; homestream's transform with each
//! program, on one CPU, and as 2 replicas; the programs alone; the sink, alone and as 2
//! replicas; Spark's jobs); then the output check on the last round's outputs, and the
//! table.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::json;

use crate::bare::{COLUMNS, create_table, produce};
use crate::check::{Outputs, check};
use crate::child::{Component, measure_component, self_report};
use crate::first_output::Output;
use crate::lake::measure_delta;
use crate::program::{self, ProgramCost};
use crate::spark::{self, Job, Spark};
use crate::table::Table;
use crate::{PARTITIONS, records};

/// What [`orchestrate`] measures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every row: the transforms', then the sinks' on the VRL transform's output.
    All,
    /// The sinks' rows, fed with the cleaned records directly.
    SinkOnly,
    /// The DeltaSink and its Python baseline, fed with the cleaned records directly.
    DeltaOnly,
}

const BARE_KAFKA: &str = "bare rdkafka consume+produce";
const VRL_TRANSFORM: &str = "transform (exactlyOnce, VRL)";
const SQL_TRANSFORM: &str = "transform (exactlyOnce, SQL)";
/// The bare insert loop as a task of the runtime, as the sink runs its pipeline: the
/// sink's reference.
const BARE_INSERT: &str = "bare prepared insert (64 inflight)";
const SINK: &str = "sink (atLeastOnce+idempotent)";
const VRL_ALONE: &str = "VRL (clean_listing.vrl)";
const SQL_ALONE: &str = "SQL (clean_listing.sql)";
/// The components' latency: from receiving a record to committing its result.
const PROCESSING: &str = "homestream_stream_processing_seconds";

/// The targets for homestream against Spark: at least 5 times its records per
/// core, with at most a tenth of its memory.
const SPARK_TARGET: Option<(f64, f64)> = Some((5.0, 10.0));
/// The target for the VRL transform: at most 15% above its program's cost plus
/// the bare loop's.
const OVERHEAD_TARGET: Option<f64> = Some(15.0);

pub(crate) async fn orchestrate(records: usize, rounds: usize, scope: Scope) -> Result<()> {
    let env = StackEnv::load()?;
    let exe = std::env::current_exe()?;
    let mut table = Table::default();
    let spark = if scope == Scope::DeltaOnly {
        Err("not part of this run".to_owned())
    } else {
        Spark::set_up().map_err(|error| {
            eprintln!("Spark baseline: not available: {error:#}");
            format!("{error:#}")
        })
    };
    let mut outputs = Outputs::default();
    let input = if scope == Scope::All {
        let input = random_name("bench-in");
        kafka::create_topic(&env, &input, PARTITIONS).await?;
        produce_timed(&env, &input, records, records::raw)?;
        input
    } else {
        cleaned_topic(&env, records).await?
    };
    for round in 1..=rounds {
        eprintln!("Round {round} of {rounds}.");
        let cleaned = match scope {
            Scope::All => {
                measure_transforms(
                    &exe,
                    &env,
                    &spark,
                    &input,
                    records,
                    &mut table,
                    &mut outputs,
                )
                .await?
            }
            Scope::SinkOnly => input.clone(),
            Scope::DeltaOnly => {
                measure_delta(&exe, &env, &input, records, &mut table).await?;
                continue;
            }
        };
        measure_sinks(
            &exe,
            &env,
            &spark,
            &cleaned,
            records,
            &mut table,
            &mut outputs,
        )
        .await?;
    }
    if scope == Scope::All {
        table.compare(SQL_TRANSFORM, spark::TRANSFORM, SPARK_TARGET);
        table.compare(VRL_TRANSFORM, spark::TRANSFORM, None);
        table.compare(SQL_TRANSFORM, spark::TRANSFORM_UDF, None);
        table.sum(VRL_TRANSFORM, VRL_ALONE, BARE_KAFKA, OVERHEAD_TARGET);
        table.sum(SQL_TRANSFORM, SQL_ALONE, BARE_KAFKA, None);
    }
    if scope != Scope::DeltaOnly {
        table.compare(SINK, spark::SINK, SPARK_TARGET);
        eprintln!("Checking the outputs...");
        match check(&env, &outputs, records).await {
            Ok(lines) => lines.into_iter().for_each(|line| table.note(line)),
            Err(error) => table.note(format!("output check failed: {error:#}")),
        }
    }
    table.print(records, rounds);
    Ok(())
}

fn produce_timed(
    env: &StackEnv,
    topic: &str,
    records: usize,
    record: impl FnMut(usize) -> Result<(String, Vec<u8>)>,
) -> Result<()> {
    eprintln!("Producing {records} generated listing records...");
    let started = Instant::now();
    produce(env, topic, records, record)?;
    eprintln!("Produced in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// A topic of the records as the VRL cleaning program makes them, the sinks' input when
/// no transform runs.
async fn cleaned_topic(env: &StackEnv, records: usize) -> Result<String> {
    let topic = random_name("bench-out");
    kafka::create_topic(env, &topic, PARTITIONS).await?;
    let program = homestream_common::program::VrlProgram::compile(program::VRL)
        .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
    let mut runner = program.runner();
    produce_timed(env, &topic, records, |n| records::cleaned(&mut runner, n))?;
    Ok(topic)
}

async fn new_topic(env: &StackEnv) -> Result<String> {
    let topic = random_name("bench-out");
    kafka::create_topic(env, &topic, PARTITIONS).await?;
    Ok(topic)
}

/// The bare Kafka loop, the transforms, the programs alone and Spark's transforms, each
/// from `input` to a topic of its own. Returns the VRL transform's topic, the sinks' input.
async fn measure_transforms(
    exe: &Path,
    env: &StackEnv,
    spark: &Result<Spark, String>,
    input: &str,
    records: usize,
    table: &mut Table,
    outputs: &mut Outputs,
) -> Result<String> {
    eprintln!("Bare Kafka loop...");
    let bare_output = new_topic(env).await?;
    let bare_kafka = self_report(Command::new(exe).args([
        "bare-kafka",
        &env.kafka_bootstrap,
        input,
        &bare_output,
        &records.to_string(),
    ]))?;
    table.record(BARE_KAFKA, bare_kafka, None);

    // The cleaning program in VRL, on every CPU (its output feeds the sinks) and on one
    // CPU, whose pool has one thread: the two rows show what the pool's threads cost per
    // record and gain in wall time. Then the program `.` (each record out as it came in):
    // the transform without a cleaning program, i.e. Kafka with transactions plus VRL's
    // fixed cost of reading and writing a record. Then the same cleaning in SQL, and
    // both as 2 replicas in one consumer group, as a Deployment of 2 pods scales.
    let vrl = ("program", json!(program::VRL));
    let sql = ("sql", serde_json::to_value(program::sql_spec()?)?);
    let identity = ("program", json!("."));
    let runs = [
        (VRL_TRANSFORM, "run-transform", &vrl, 1, BARE_KAFKA),
        (
            "transform on one CPU",
            "run-transform-one-cpu",
            &vrl,
            1,
            BARE_KAFKA,
        ),
        (
            "transform, program `.`",
            "run-transform",
            &identity,
            1,
            BARE_KAFKA,
        ),
        (SQL_TRANSFORM, "run-transform", &sql, 1, BARE_KAFKA),
        (
            "transform (VRL), 2 replicas",
            "run-transform",
            &vrl,
            2,
            VRL_TRANSFORM,
        ),
        (
            "transform (SQL), 2 replicas",
            "run-transform",
            &sql,
            2,
            SQL_TRANSFORM,
        ),
    ];
    let mut cleaned = None;
    for (name, mode, (field, program), replicas, reference) in runs {
        eprintln!("{name}...");
        let output = new_topic(env).await?;
        let mut spec = json!({
            "input": {"topic": input, "consumerGroup": random_name("bench-transform")},
            "output": {"topic": {"name": output}},
        });
        spec[*field] = program.clone();
        let transform = Component {
            mode,
            kind: "StreamTransform",
            spec: &spec,
            replicas,
            latency_histogram: PROCESSING,
            output: Output::Topic(&output),
        };
        let measured = measure_component(exe, env, &transform, records).await?;
        table.record(name, measured, Some(reference));
        match name {
            VRL_TRANSFORM => cleaned = Some(output),
            SQL_TRANSFORM => outputs.topics = vec![(SQL_TRANSFORM, output)],
            _ => {}
        }
    }
    let cleaned = cleaned.context("the VRL transform ran")?;
    outputs.reference_topic = Some(cleaned.clone());

    for (name, language) in [(VRL_ALONE, "vrl"), (SQL_ALONE, "sql")] {
        eprintln!("The {language} program alone...");
        table.record_program(name, program_alone(exe, language, records)?);
    }

    for udf in [false, true] {
        let output = new_topic(env).await?;
        let job = if udf {
            Job::TransformUdf(&output)
        } else {
            Job::Transform(&output)
        };
        if spark::measure_row(spark, env, job, input, records, table).await {
            outputs.topics.push((job.row(), output.clone()));
        }
    }
    Ok(cleaned)
}

/// The program's cost alone, in a child of its own: this process's allocator and
/// threads are not the transform's.
fn program_alone(exe: &Path, language: &str, records: usize) -> Result<ProgramCost> {
    // The cost per record settles within a few seconds of runs.
    let records = records.min(200_000).to_string();
    let output = Command::new(exe)
        .args(["measure-program", &records, language])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "measure-program {language} failed: {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("parsing measure-program's report")
}

/// The bare insert loops, then the sink (alone and as 2 replicas) and Spark's sink, each
/// reading `input` into a table of its own.
async fn measure_sinks(
    exe: &Path,
    env: &StackEnv,
    spark: &Result<Spark, String>,
    input: &str,
    records: usize,
    table: &mut Table,
    outputs: &mut Outputs,
) -> Result<()> {
    let (session, keyspace) = create_table(env).await?;
    // On the thread that blocks on the runtime, the driver's connection tasks wake
    // another thread for every request: shown for comparison, not the reference.
    for (place, name) in [
        ("task", BARE_INSERT),
        ("main", "  same, on the main thread"),
        ("batch", "  same, unlogged batches of 10 rows"),
    ] {
        eprintln!("Bare insert loop ({place})...");
        let bare = self_report(Command::new(exe).args([
            "bare-insert",
            &env.cassandra_contact_points,
            &keyspace,
            &records.to_string(),
            place,
        ]))?;
        table.record(name, bare, None);
        session
            .query_unpaged(format!("TRUNCATE {keyspace}.listings"), &[])
            .await?;
    }

    for (name, replicas) in [(SINK, 1), ("sink, 2 replicas", 2)] {
        eprintln!("{name} (reading the cleaned records)...");
        let keyspace = if replicas == 1 {
            keyspace.clone()
        } else {
            create_table(env).await?.1
        };
        let spec = json!({
            "input": {"topic": input, "consumerGroup": random_name("bench-sink")},
            "keyspace": {"name": keyspace, "replication": {"simpleStrategy": {"replicationFactor": 1}}},
            "table": {"name": "listings", "columns": COLUMNS.iter().map(|(name, ty)| json!({"name": name, "type": ty})).collect::<Vec<_>>(), "partitionKey": ["listing_key"]},
            "consistency": "One",
        });
        let sink = Component {
            mode: "run-sink",
            kind: "CassandraSink",
            spec: &spec,
            replicas,
            latency_histogram: PROCESSING,
            output: Output::Table(&keyspace),
        };
        let measured = measure_component(exe, env, &sink, records).await?;
        let reference = if replicas == 1 { BARE_INSERT } else { SINK };
        table.record(name, measured, Some(reference));
    }
    outputs.sink_keyspace = Some(keyspace);

    let spark_keyspace = create_table(env).await?.1;
    if spark::measure_row(
        spark,
        env,
        Job::Sink(&spark_keyspace),
        input,
        records,
        table,
    )
    .await
    {
        outputs.spark_keyspace = Some(spark_keyspace);
    }
    Ok(())
}
