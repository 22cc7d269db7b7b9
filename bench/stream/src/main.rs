//! Throughput benchmark of `transform` and `sink` against the raw limits of the machine.
//!
//! Generates listing records shaped like the realtor.com REST ScrapeJob's output
//! ([`records`]), produces them to a topic, then runs measured child processes one after the other:
//! a bare rdkafka consume-and-produce loop, the transform (exactly-once, the cleaning
//! program) on every CPU and again on one CPU, the transform with the program `.`
//! (its cost without a cleaning program), a bare prepared-insert loop three times (as
//! a runtime task, as the sink runs its pipeline, which is the sink's reference; on
//! the main thread, which costs a thread wake-up per request; and as a task sending
//! unlogged batches of 10 rows, as the sink does when records wait), and the sink
//! (reading the transform's output into the same table). Each is measured from
//! outside through `/proc`, from the end of its set-up (a component: when `/readyz`
//! first answers; a bare loop: after its clients are made) to its last record:
//! CPU time, so records per second per core; peak resident memory; and latency
//! (runtime: its `processing_seconds` histogram; bare loops: exact, per record from
//! receipt to acknowledgement).
//!
//! Run (about 5 minutes a round for a million records on 2 cores):
//! `cargo build --release -p homestream-bench-stream && target/release/bench-stream [records] [rounds]`
//!
//! With several rounds, every row is measured once a round and the table shows the
//! medians; a ratio to a bare loop is taken within each round (the two ran minutes
//! apart, not a round apart), and its range across rounds is shown next to it.
//!
//! `bench-stream sink [records] [rounds]` measures only the bare insert loops and the sink: it
//! runs the cleaning program in process and produces its output straight to the
//! sink's input topic, skipping the bare Kafka loop and the transform.
//!
//! `bench-stream delta [records] [rounds]` measures the DeltaSink against the Python a
//! team would write instead (confluent-kafka, pyarrow, deltalake's `write_deltalake`;
//! its venv is made by `baselines/venv.sh`), each appending the cleaned records to a
//! Delta table on the stack's S3; latency there is a commit's.
//!
//! `bench-stream program [records] [file.vrl]` measures the CPU cost per record of
//! the cleaning program (or `file.vrl`, e.g. `.` for the fixed cost of parsing and
//! encoding) alone, in process, without Kafka: the run to put under `perf record`.

#![allow(
    missing_docs,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
use std::path::PathBuf;

use anyhow::Result;
use homestream_common::serve;
use homestream_common::serve::Readiness;
use homestream_common::shutdown;
use homestream_crds::cassandrasink::validate::MAX_BATCH_ROWS;
use homestream_runtime::process::Process;
use homestream_runtime::stream;

mod bare;
mod child;
mod lake;
mod records;
mod rounds;

use bare::{bare_insert, bare_kafka};
use child::proc_usage;
use rounds::{Scope, orchestrate};

/// The allocator of `homestream-runtime`, so that the components run here as they ship.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 4;
const PROGRAM: &str = include_str!("../../../runtime/programs/clean_listing.vrl");
/// The sink's default write concurrency, used by the bare insert loop too.
const CONCURRENCY: usize = 64;
/// Rows per unlogged batch in the batched bare insert loop: the sink's most.
const BATCH_ROWS: u64 = MAX_BATCH_ROWS.get() as u64;

/// A child's measurements.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Measured {
    records: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.get(1).map(String::as_str) {
        Some("run-transform") => runtime.block_on(run_component("transform", &args[2], &args[3])),
        Some("run-sink") => runtime.block_on(run_component("sink", &args[2], &args[3])),
        Some("run-delta-sink") => runtime.block_on(run_component("delta-sink", &args[2], &args[3])),
        Some("bare-kafka") => report(&bare_kafka(&args[2], &args[3], &args[4], args[5].parse()?)?),
        Some("bare-insert") => {
            let (contact_points, keyspace, records) =
                (args[2].clone(), args[3].clone(), args[4].parse()?);
            let rows_per_request = if args[5] == "batch" { BATCH_ROWS } else { 1 };
            let bare = async move {
                bare_insert(&contact_points, &keyspace, records, rows_per_request).await
            };
            let measured = match args[5].as_str() {
                "main" => runtime.block_on(bare)?,
                _ => runtime.block_on(runtime.spawn(bare))??,
            };
            report(&measured)
        }
        Some("program") => program_cost(
            args.get(2).map_or(Ok(200_000), |n| n.parse())?,
            args.get(3).map(std::fs::read_to_string).transpose()?,
        ),
        Some("sink") => {
            let records = args.get(2).map_or(Ok(1_000_000), |n| n.parse())?;
            let rounds = args.get(3).map_or(Ok(1), |n| n.parse())?;
            runtime.block_on(orchestrate(records, rounds, Scope::SinkOnly))
        }
        Some("delta") => {
            let records = args.get(2).map_or(Ok(1_000_000), |n| n.parse())?;
            let rounds = args.get(3).map_or(Ok(1), |n| n.parse())?;
            runtime.block_on(orchestrate(records, rounds, Scope::DeltaOnly))
        }
        other => {
            let records = other.map_or(Ok(1_000_000), str::parse)?;
            let rounds = args.get(2).map_or(Ok(1), |n| n.parse())?;
            runtime.block_on(orchestrate(records, rounds, Scope::All))
        }
    }
}

fn report(measured: &Measured) -> Result<()> {
    println!("{}", serde_json::to_string(measured)?);
    Ok(())
}

/// Runs a runtime component in this process (the child), as `main` would.
async fn run_component(component: &str, config: &str, listen: &str) -> Result<()> {
    let (trigger, shutdown) = shutdown::channel();
    trigger.on_signals()?;
    let process = Process {
        listener: serve::bind(listen.parse()?).await?,
        readiness: Readiness::default(),
        shutdown,
    };
    let config = PathBuf::from(config);
    match component {
        "transform" => stream::transform::run(&config, process).await,
        "delta-sink" => stream::delta::run(&config, process).await,
        _ => stream::sink::run(&config, process).await,
    }
}

/// CPU cost of the cleaning program alone, in process and without Kafka: the share
/// of the transform's cost that is VRL (parse, run, encode), and a target for `perf`.
/// `source` replaces the cleaning program, e.g. with `.` to measure the fixed cost.
fn program_cost(records: usize, source: Option<String>) -> Result<()> {
    use homestream_common::program::{Origin, VrlProgram};
    let payloads: Vec<Vec<u8>> = (0..records.min(10_000))
        .map(|n| serde_json::to_vec(&records::listing(n)))
        .collect::<Result<_, _>>()?;
    let program = VrlProgram::compile(source.as_deref().unwrap_or(PROGRAM))
        .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
    let mut runner = program.runner();
    // CPU time, not wall time: the machine is shared.
    let cpu_before = proc_usage(std::process::id())?.0;
    let mut bytes = 0;
    for n in 0..records {
        let origin = Origin {
            key: Some(b"raw-1"),
            topic: "bench-in",
            partition: 0,
            offset: n as i64,
            timestamp: Some(1_778_751_000_000),
        };
        if let homestream_common::program::Outcome::Records(records) =
            runner.run(&payloads[n % payloads.len()], origin)
        {
            bytes += records
                .iter()
                .map(|record| record.value.len())
                .sum::<usize>();
        }
    }
    let cpu = proc_usage(std::process::id())?.0 - cpu_before;
    println!(
        "{records} records through the program in {cpu:.2} CPU s: {:.2} us/record ({bytes} bytes out)",
        cpu * 1e6 / records as f64
    );
    Ok(())
}
