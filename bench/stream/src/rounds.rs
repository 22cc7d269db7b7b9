//! A benchmark run: the records produced once, then each round measures every row
//! (bare loops, transform, sink) as a child process, and the table of medians.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::json;

use crate::bare::{COLUMNS, create_table, produce};
use crate::child::{measure_component, self_report};
use crate::lake::measure_delta;
use crate::{Measured, PARTITIONS, PROGRAM, records};

/// What [`orchestrate`] measures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Both components and both bare loops.
    All,
    /// The bare insert loop and the sink, fed with the cleaned records directly.
    SinkOnly,
    /// The DeltaSink and its Python baseline, fed with the cleaned records directly.
    DeltaOnly,
}

pub(crate) async fn orchestrate(records: usize, rounds: usize, scope: Scope) -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output) = (random_name("bench-in"), random_name("bench-out"));
    for topic in [&input, &output] {
        kafka::create_topic(&env, topic, PARTITIONS).await?;
    }
    eprintln!("Producing {records} generated listing records...");
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut table = Table::default();
    if scope != Scope::All {
        let program = homestream_common::program::VrlProgram::compile(PROGRAM)
            .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
        let mut runner = program.runner();
        produce(&env, &output, records, |n| records::cleaned(&mut runner, n))?;
        eprintln!("Produced in {:.1} s.", started.elapsed().as_secs_f64());
        for round in 1..=rounds {
            eprintln!("Round {round} of {rounds}.");
            match scope {
                Scope::DeltaOnly => measure_delta(&exe, &env, &output, records, &mut table).await?,
                _ => measure_sink(&exe, &env, &output, records, &mut table).await?,
            }
        }
    } else {
        produce(&env, &input, records, records::raw)?;
        eprintln!("Produced in {:.1} s.", started.elapsed().as_secs_f64());
        for round in 1..=rounds {
            eprintln!("Round {round} of {rounds}.");
            measure_transform(&exe, &env, &input, &output, records, &mut table).await?;
            // Every round's transform appends its output; the sink reads the first
            // `records` of it, the first round's.
            measure_sink(&exe, &env, &output, records, &mut table).await?;
        }
    }
    table.print(records, rounds);
    Ok(())
}

/// The bare Kafka loop and the transform (exactly once, the cleaning program) on
/// every CPU and on one, each from `input` to a topic of its own.
pub(crate) async fn measure_transform(
    exe: &Path,
    env: &StackEnv,
    input: &str,
    output: &str,
    records: usize,
    table: &mut Table,
) -> Result<()> {
    let bare_output = random_name("bench-bare");
    kafka::create_topic(env, &bare_output, PARTITIONS).await?;
    eprintln!("Bare Kafka loop...");
    let bare_kafka = self_report(Command::new(exe).args([
        "bare-kafka",
        &env.kafka_bootstrap,
        input,
        &bare_output,
        &records.to_string(),
    ]))?;
    table.record(BARE_KAFKA, bare_kafka, None);

    // The cleaning program, on every CPU (its output feeds the sink) and on one CPU,
    // whose pool has one thread: the two rows show what the pool's threads cost per
    // record and gain in wall time. Then the program `.` (each record out as it came
    // in): the transform without a cleaning program, i.e. Kafka with transactions plus
    // VRL's fixed cost of reading and writing a record.
    let runs = [
        ("transform (exactlyOnce, VRL)", "run-transform", PROGRAM),
        ("transform on one CPU", "run-transform-one-cpu", PROGRAM),
        ("transform, program `.`", "run-transform", "."),
    ];
    for (index, (name, mode, program)) in runs.into_iter().enumerate() {
        eprintln!("{name}...");
        let own_output = if index == 0 {
            output.to_owned()
        } else {
            let topic = random_name("bench-out");
            kafka::create_topic(env, &topic, PARTITIONS).await?;
            topic
        };
        let spec = json!({
            "input": {"topic": input, "consumerGroup": random_name("bench-transform")},
            "output": {"topic": {"name": own_output}},
            "program": program,
        });
        let measured = measure_component(
            exe,
            mode,
            env,
            "StreamTransform",
            &spec,
            records,
            PROCESSING,
        )
        .await?;
        table.record(name, measured, Some(BARE_KAFKA));
    }
    Ok(())
}

/// The components' latency: from receiving a record to committing its result.
const PROCESSING: &str = "homestream_stream_processing_seconds";

pub(crate) const BARE_KAFKA: &str = "bare rdkafka consume+produce";
/// The bare insert loop as a task of the runtime, as the sink runs its pipeline: the
/// sink's reference.
pub(crate) const BARE_INSERT: &str = "bare prepared insert (64 inflight)";

/// Runs the bare insert loops, then the sink reading `input` into the same table.
pub(crate) async fn measure_sink(
    exe: &Path,
    env: &StackEnv,
    input: &str,
    records: usize,
    table: &mut Table,
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

    eprintln!("Sink (reading the cleaned records)...");
    let spec = json!({
        "input": {"topic": input, "consumerGroup": random_name("bench-sink")},
        "keyspace": {"name": keyspace, "replication": {"simpleStrategy": {"replicationFactor": 1}}},
        "table": {"name": "listings", "columns": COLUMNS.iter().map(|(name, ty)| json!({"name": name, "type": ty})).collect::<Vec<_>>(), "partitionKey": ["listing_key"]},
        "consistency": "One",
    });
    let sink = measure_component(
        exe,
        "run-sink",
        env,
        "CassandraSink",
        &spec,
        records,
        PROCESSING,
    )
    .await?;
    table.record("sink (atLeastOnce+idempotent)", sink, Some(BARE_INSERT));
    Ok(())
}

/// Every round's measurements, printed as one line a row with the medians.
#[derive(Default)]
pub(crate) struct Table {
    /// Rows in the order first measured: name, the reference row's name, and one
    /// measurement per round.
    rows: Vec<(&'static str, Option<&'static str>, Vec<Measured>)>,
}

impl Table {
    pub(crate) fn record(
        &mut self,
        name: &'static str,
        measured: Measured,
        reference: Option<&'static str>,
    ) {
        match self.rows.iter_mut().find(|(row, ..)| *row == name) {
            Some((.., runs)) => runs.push(measured),
            None => self.rows.push((name, reference, vec![measured])),
        }
    }

    fn runs(&self, name: &str) -> &[Measured] {
        self.rows
            .iter()
            .find(|(row, ..)| *row == name)
            .map_or(&[], |(.., runs)| runs)
    }

    fn print(&self, records: usize, rounds: usize) {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        println!(
            "\n{records} records, {PARTITIONS} partitions, {cores} cores (shared), median of {rounds} round(s); latency: receipt to commit/acknowledgement"
        );
        println!(
            "{:<34} {:>12} {:>14} {:>9} {:>9} {:>10} {:>16}",
            "", "records/s", "records/s/core", "p50 ms", "p99 ms", "peak MiB", "vs ref (range)"
        );
        for (name, reference, runs) in &self.rows {
            let column = |value: fn(&Measured) -> f64| median(runs.iter().map(value).collect());
            // Each round's ratio to the reference measured in that round, next to it in
            // time, so that a machine busier in one round than another cancels out.
            let ratios: Vec<f64> = reference
                .map(|reference| {
                    runs.iter()
                        .zip(self.runs(reference))
                        .map(|(run, bare)| 100.0 * per_core(run) / per_core(bare))
                        .collect()
                })
                .unwrap_or_default();
            let ratio = if ratios.is_empty() {
                String::new()
            } else {
                let (low, high) = ratios.iter().fold((f64::MAX, f64::MIN), |(low, high), r| {
                    (low.min(*r), high.max(*r))
                });
                format!("{:.0}% ({low:.0}-{high:.0})", median(ratios.clone()))
            };
            println!(
                "{:<34} {:>12.0} {:>14.0} {:>9.1} {:>9.1} {:>10.1} {:>16}",
                name,
                column(|m| m.records as f64 / m.wall_seconds),
                column(per_core),
                column(|m| m.p50_ms),
                column(|m| m.p99_ms),
                column(|m| m.peak_rss_mib),
                ratio
            );
        }
    }
}

pub(crate) fn per_core(measured: &Measured) -> f64 {
    measured.records as f64 / measured.cpu_seconds
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}
