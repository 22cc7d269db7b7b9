//! Throughput benchmark of `transform` and `sink` against the raw limits of the machine
//! and against Spark Structured Streaming, side by side in one table.
//!
//! Generates listing records shaped like the realtor.com REST ScrapeJob's output
//! ([`records`]), produces them to a topic, then runs measured child processes one after
//! the other, on the same records:
//!
//! - a bare rdkafka consume-and-produce loop; the transform (exactly-once, all CPUs) with
//!   the VRL cleaning program `runtime/programs/clean_listing.vrl`, again on one CPU,
//!   with the program `.` (its cost without a cleaning program), with the SQL cleaning
//!   program (`clean_listing.sql`, the columns of the SQL example StreamTransform); both
//!   programs' transforms as 2 replicas (2 processes in one consumer group, as 2 pods);
//! - each program alone, in process without Kafka ([`program`]);
//! - Spark (`baselines/spark`, [`spark`]): the cleaning program in Spark SQL built-ins
//!   and as a Python UDF, Kafka to Kafka;
//! - a bare prepared-insert loop three times (as a runtime task, as the sink runs its
//!   pipeline, which is the sink's reference; on the main thread, which costs a thread
//!   wake-up per request; and as a task sending unlogged batches of 10 rows, as the sink
//!   does when records wait); the sink, alone and as 2 replicas, and Spark's job into
//!   Cassandra, each reading the VRL transform's output into a table of its own.
//!
//! Each is measured from outside through `/proc`, from the end of its set-up (a
//! component: when every replica's `/readyz` answers; a bare loop: after its clients are
//! made; Spark: its first micro-batch's start) to its last record: CPU time, so records
//! per second per core (of every process: Spark's Python driver, JVM and workers); peak
//! resident memory (of every process, summed); latency (runtime: its
//! `processing_seconds` histogram; bare loops: exact, per record from receipt to
//! acknowledgement); and for the components and Spark, the start-up time, from the
//! first process's start to the first output the next stage sees ([`first_output`]).
//! The table then puts homestream against Spark (with the targets: at least 5x
//! Spark SQL's records per core with at most 1/10 of its memory), the VRL transform
//! against its program's cost plus the bare loop's (target: within 15%), and checks on a
//! sample of 1000 keys that every transform and sink wrote the same cleaned records
//! ([`check`]). Targets are reported, never asserted.
//!
//! Run (about 15 minutes a round for a million records on 2 idle cores; the first run
//! also installs Spark under `$HOMESTREAM_CACHE`, about 400 MB from PyPI and Maven
//! Central): `images/cargo build --workspace --bin bench-stream &&
//! target/x86_64-unknown-linux-musl/release/bench-stream [records] [rounds]`: built as the
//! images are (static musl, release, mimalloc), so the components run as they ship and
//! the build reuses the images'.
//!
//! With several rounds, every row is measured once a round and the table shows the
//! medians; a ratio between rows is taken within each round (they ran minutes apart,
//! not a round apart), and its range across rounds is shown next to it. When Spark
//! cannot be set up or a Spark job fails, its rows say why and the rest is measured.
//!
//! `bench-stream sink [records] [rounds]` measures only the bare insert loops, the sink
//! and Spark's sink job: it runs the VRL cleaning program in process and produces its
//! output straight to the sinks' input topic.
//!
//! `bench-stream delta [records] [rounds]` measures the DeltaSink against the Python a
//! team would write instead (confluent-kafka, pyarrow, deltalake's `write_deltalake`;
//! its venv is made by `baselines/venv.sh`), each appending the cleaned records to a
//! Delta table on the stack's S3; latency there is a commit's.
//!
//! `bench-stream program [records] [file]` measures the CPU cost per record of the VRL
//! cleaning program, or of `file` (`.sql`: a query read with the SQL example's columns;
//! otherwise VRL, e.g. `.` for the fixed cost of parsing and encoding), alone, in
//! process, without Kafka, a chunk a run as the transform polls it (512 records for VRL,
//! 4096 for SQL): the run to put under `perf record`.

#![allow(
    missing_docs,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
use std::path::{Path, PathBuf};

use anyhow::Result;
use homestream_common::serve;
use homestream_common::serve::Readiness;
use homestream_common::shutdown;
use homestream_crds::cassandrasink::validate::MAX_BATCH_ROWS;
use homestream_runtime::process::Process;
use homestream_runtime::stream;

mod bare;
mod check;
mod child;
mod first_output;
mod lake;
mod program;
mod records;
mod rounds;
mod spark;
mod table;
mod tree;

use bare::{bare_insert, bare_kafka};
use rounds::{Scope, orchestrate};

/// The allocator of `homestream-runtime`, so that the components run here as they ship.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 4;
/// The sink's default write concurrency, used by the bare insert loop too.
const CONCURRENCY: usize = 64;
/// Rows per unlogged batch in the batched bare insert loop: the sink's most.
const BATCH_ROWS: u64 = MAX_BATCH_ROWS.get() as u64;

/// A row's measurements, in one round.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Measured {
    records: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    /// Of all its processes together.
    peak_rss_mib: f64,
    /// Latency, where the row measures it.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// From the start of its first process to the first output the next stage sees.
    startup_seconds: Option<f64>,
    /// Each process's peak resident MiB, when there are several.
    #[serde(default)]
    processes: Vec<(String, f64)>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let count = |index: usize, default: usize| args.get(index).map_or(Ok(default), |n| n.parse());
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
        Some("measure-program") => {
            let cost = program::cost(&program::cleaning(&args[3])?, args[2].parse()?)?;
            println!("{}", serde_json::to_string(&cost)?);
            Ok(())
        }
        Some("program") => program::print_cost(count(2, 200_000)?, args.get(3).map(Path::new)),
        Some("sink") => runtime.block_on(orchestrate(
            count(2, 1_000_000)?,
            count(3, 1)?,
            Scope::SinkOnly,
        )),
        Some("delta") => runtime.block_on(orchestrate(
            count(2, 1_000_000)?,
            count(3, 1)?,
            Scope::DeltaOnly,
        )),
        _ => runtime.block_on(orchestrate(count(1, 1_000_000)?, count(2, 1)?, Scope::All)),
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
