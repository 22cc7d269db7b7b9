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
//! `bench-stream program [records] [file.vrl]` measures the CPU cost per record of
//! the cleaning program (or `file.vrl`, e.g. `.` for the fixed cost of parsing and
//! encoding) alone, in process, without Kafka: the run to put under `perf record`.

#![allow(
    missing_docs,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use homestream_common::serve;
use homestream_common::serve::Readiness;
use homestream_common::shutdown;
use homestream_crds::cassandrasink::validate::MAX_BATCH_ROWS;
use homestream_runtime::process::Process;
use homestream_runtime::stream;
use homestream_tests::{StackEnv, kafka, random_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde_json::{Value, json};

mod records;

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
        _ => stream::sink::run(&config, process).await,
    }
}

/// CPU cost of the cleaning program alone, in process and without Kafka: the share
/// of the transform's cost that is VRL (parse, run, encode), and a target for `perf`.
/// `source` replaces the cleaning program, e.g. with `.` to measure the fixed cost.
fn program_cost(records: usize, source: Option<String>) -> Result<()> {
    use homestream_common::program::{Origin, Program};
    let payloads: Vec<Vec<u8>> = (0..records.min(10_000))
        .map(|n| serde_json::to_vec(&records::listing(n)))
        .collect::<Result<_, _>>()?;
    let program = Program::compile(source.as_deref().unwrap_or(PROGRAM))
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

/// What [`orchestrate`] measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Both components and both bare loops.
    All,
    /// The bare insert loop and the sink, fed with the cleaned records directly.
    SinkOnly,
}

async fn orchestrate(records: usize, rounds: usize, scope: Scope) -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output) = (random_name("bench-in"), random_name("bench-out"));
    for topic in [&input, &output] {
        kafka::create_topic(&env, topic, PARTITIONS).await?;
    }
    eprintln!("Producing {records} generated listing records...");
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut table = Table::default();
    if scope == Scope::SinkOnly {
        let program = homestream_common::program::Program::compile(PROGRAM)
            .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
        let mut runner = program.runner();
        produce(&env, &output, records, |n| records::cleaned(&mut runner, n))?;
        eprintln!("Produced in {:.1} s.", started.elapsed().as_secs_f64());
        for round in 1..=rounds {
            eprintln!("Round {round} of {rounds}.");
            measure_sink(&exe, &env, &output, records, &mut table).await?;
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
async fn measure_transform(
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
        let measured = measure_component(exe, mode, env, "StreamTransform", &spec, records).await?;
        table.record(name, measured, Some(BARE_KAFKA));
    }
    Ok(())
}

const BARE_KAFKA: &str = "bare rdkafka consume+produce";
/// The bare insert loop as a task of the runtime, as the sink runs its pipeline: the
/// sink's reference.
const BARE_INSERT: &str = "bare prepared insert (64 inflight)";

/// Runs the bare insert loops, then the sink reading `input` into the same table.
async fn measure_sink(
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
    let sink = measure_component(exe, "run-sink", env, "CassandraSink", &spec, records).await?;
    table.record("sink (atLeastOnce+idempotent)", sink, Some(BARE_INSERT));
    Ok(())
}

/// Every round's measurements, printed as one line a row with the medians.
#[derive(Default)]
struct Table {
    /// Rows in the order first measured: name, the reference row's name, and one
    /// measurement per round.
    rows: Vec<(&'static str, Option<&'static str>, Vec<Measured>)>,
}

impl Table {
    fn record(&mut self, name: &'static str, measured: Measured, reference: Option<&'static str>) {
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
            "", "records/s", "records/s/core", "p50 ms", "p99 ms", "peak MiB", "vs bare (range)"
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

fn per_core(measured: &Measured) -> f64 {
    measured.records as f64 / measured.cpu_seconds
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

fn self_report(command: &mut Command) -> Result<Measured> {
    let output = command.stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        bail!("benchmark child failed: {}", output.status);
    }
    let text = String::from_utf8(output.stdout)?;
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .context("parsing a child's report")
}

/// Runs a runtime component as a child until its `records_out` reaches `records`.
async fn measure_component(
    exe: &Path,
    mode: &str,
    env: &StackEnv,
    kind: &str,
    spec: &Value,
    records: usize,
) -> Result<Measured> {
    let dir = std::env::temp_dir().join(random_name("bench"));
    std::fs::create_dir_all(&dir)?;
    let mut config = json!({
        "resource": {"kind": kind, "namespace": "bench", "name": random_name("bench"), "generation": 1},
        "spec": spec,
        "kafka": {"bootstrapServers": [env.kafka_bootstrap]},
    });
    if kind == "CassandraSink" {
        config["cassandra"] = json!({"contactPoints": [env.cassandra_contact_points]});
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_json::to_string(&config)?)?;
    let listen = TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let started = Instant::now();
    // `run-transform-one-cpu` is `run-transform` under `taskset -c 0`, which execs it
    // (same pid, so `/proc` measures the component).
    let mut command = match mode.strip_suffix("-one-cpu") {
        Some(mode) => {
            let mut command = Command::new("taskset");
            command.args(["-c", "0"]).arg(exe).arg(mode);
            command
        }
        None => {
            let mut command = Command::new(exe);
            command.arg(mode);
            command
        }
    };
    let mut child = command
        .args([path.to_str().unwrap_or_default(), &listen])
        .env("RUST_LOG", "warn")
        .env("HOMESTREAM_INSTANCE", "bench")
        .spawn()?;
    // The measurement starts when the component is ready (program compiled, clients
    // created, Cassandra connected), as the bare loops' starts after their set-up.
    let (started, cpu_before) = loop {
        if let Some(status) = child.try_wait()? {
            bail!("{mode} exited early: {status}");
        }
        if http_get(&listen, "/readyz")
            .await
            .is_ok_and(|(status, _)| status == 200)
        {
            break (Instant::now(), proc_usage(child.id())?.0);
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill()?;
            bail!("{mode} was not ready within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let metrics = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(status) = child.try_wait()? {
            bail!("{mode} exited early: {status}");
        }
        let Ok((_, metrics)) = http_get(&listen, "/metrics").await else {
            continue;
        };
        if metric(&metrics, "homestream_stream_records_out_total") >= records as f64 {
            break metrics;
        }
        if started.elapsed() > Duration::from_secs(600) {
            child.kill()?;
            bail!("{mode} did not finish within 10 minutes");
        }
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    let (cpu_after, peak_rss_mib) = proc_usage(child.id())?;
    stop(&mut child)?;
    let (p50, p99) = (
        histogram_quantile(&metrics, "homestream_stream_processing_seconds", 0.5),
        histogram_quantile(&metrics, "homestream_stream_processing_seconds", 0.99),
    );
    Ok(Measured {
        records: records as u64,
        wall_seconds,
        cpu_seconds: cpu_after - cpu_before,
        peak_rss_mib,
        p50_ms: p50 * 1e3,
        p99_ms: p99 * 1e3,
    })
}

fn stop(child: &mut Child) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok(())
}

/// CPU seconds (user + system) and peak resident MiB of a live process.
fn proc_usage(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // Fields 14 and 15 (utime, stime) in clock ticks of 1/100 s, counted after the comm.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .context("no VmHWM")?
        .parse()?;
    Ok((ticks / 100.0, hwm_kb / 1024.0))
}

/// The status code and body of `GET path` on a child's HTTP endpoint.
async fn http_get(listen: &str, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status line")?;
    Ok((status, response))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// A quantile from cumulative histogram buckets, interpolated linearly in the bucket.
fn histogram_quantile(text: &str, name: &str, quantile: f64) -> f64 {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            Some((
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                },
                count.trim().parse().ok()?,
            ))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    let rank = quantile * total;
    let mut previous = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return previous.0;
            }
            let share = if count > previous.1 {
                (rank - previous.1) / (count - previous.1)
            } else {
                0.0
            };
            return previous.0 + share * (le - previous.0);
        }
        previous = (le, count);
    }
    previous.0
}

/// Produces records `0..records`, each the key and payload `record` makes of its number.
fn produce(
    env: &StackEnv,
    topic: &str,
    records: usize,
    mut record: impl FnMut(usize) -> Result<(String, Vec<u8>)>,
) -> Result<()> {
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        kafka::client_config(env)
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .create()?;
    for n in 0..records {
        let (key, payload) = record(n)?;
        let mut message = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((_, returned)) => {
                    message = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Records each delivery's latency from the receipt of its input.
#[derive(Default)]
struct Latencies(Mutex<Vec<f64>>);

impl ClientContext for Latencies {}

impl ProducerContext for Latencies {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, received: Box<Instant>) {
        if result.is_ok()
            && let Ok(mut latencies) = self.0.lock()
        {
            latencies.push(received.elapsed().as_secs_f64());
        }
    }
}

/// The raw limit of Kafka: consume, produce the same record, nothing else.
fn bare_kafka(bootstrap: &str, input: &str, output: &str, records: u64) -> Result<Measured> {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", bootstrap);
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", random_name("bench-bare"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[input])?;
    let producer: ThreadedProducer<Latencies> = base
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(Latencies::default())?;
    let (started, cpu_before) = (Instant::now(), proc_usage(std::process::id())?.0);
    let mut consumed = 0;
    while consumed < records {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let mut record: BaseRecord<'_, [u8], [u8], Box<Instant>> =
            BaseRecord::with_opaque_to(output, Box::new(Instant::now()))
                .payload(message.payload().unwrap_or_default());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        consumed += 1;
    }
    producer.flush(Duration::from_secs(60))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let (cpu, peak_rss_mib) = proc_usage(std::process::id())?;
    let mut latencies = std::mem::take(
        &mut *producer
            .context()
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?,
    );
    Ok(measured(
        records,
        wall_seconds,
        cpu - cpu_before,
        peak_rss_mib,
        &mut latencies,
    ))
}

fn measured(
    records: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    latencies: &mut [f64],
) -> Measured {
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * quantile) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Measured {
        records,
        wall_seconds,
        cpu_seconds,
        peak_rss_mib,
        p50_ms: at(0.5) * 1e3,
        p99_ms: at(0.99) * 1e3,
    }
}

/// The columns of the cleaned listing, as the sink declares them.
const COLUMNS: [(&str, &str); 13] = [
    ("listing_key", "text"),
    ("source", "text"),
    ("listing_id", "text"),
    ("url", "text"),
    ("currency", "text"),
    ("price_label", "text"),
    ("monthly_price_minor", "bigint"),
    ("beds", "int"),
    ("baths", "int"),
    ("address", "text"),
    ("postcode", "text"),
    ("outward_code", "text"),
    ("scraped_at", "timestamp"),
];

async fn create_table(env: &StackEnv) -> Result<(Session, String)> {
    let session = SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await?;
    let keyspace = random_name("bench").replace('-', "_");
    session
        .query_unpaged(
            format!("CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            &[],
        )
        .await?;
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect();
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.listings ({}, PRIMARY KEY (listing_key))",
                columns.join(", ")
            ),
            &[],
        )
        .await?;
    Ok((session, keyspace))
}

/// The raw limit of Cassandra: the same prepared insert, values ready, 64 in flight,
/// from one future (run as a task, or on the main thread: `bare-insert ... task|main`),
/// or the same as a task with [`BATCH_ROWS`] rows an unlogged batch (`... batch`).
async fn bare_insert(
    contact_points: &str,
    keyspace: &str,
    records: u64,
    rows_per_request: u64,
) -> Result<Measured> {
    use scylla::statement::batch::{Batch, BatchType};
    use scylla::value::CqlTimestamp;
    let session = SessionBuilder::new()
        .known_nodes(contact_points.split(','))
        .build()
        .await?;
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    let insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.listings ({}) VALUES ({}) USING TIMESTAMP ?",
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        ))
        .await?;
    let mut insert = insert;
    insert.set_consistency(scylla::statement::Consistency::One);
    let (started, cpu_before) = (Instant::now(), proc_usage(std::process::id())?.0);
    let timestamp = CqlTimestamp(1_778_751_000_000);
    let latencies: Vec<Result<Vec<f64>>> =
        futures::stream::iter((0..records).step_by(rows_per_request as usize))
            .map(|first| {
                let (session, insert) = (&session, &insert);
                async move {
                    let sent = Instant::now();
                    let rows: Vec<_> = (first..(first + rows_per_request).min(records))
                    .map(|n| {
                        (
                            format!("realtor:{n}"),
                            "realtor",
                            n.to_string(),
                            "https://www.realtor.com/realestateandhomes-detail/1962661_Adjuntas",
                            "USD",
                            "105000",
                            10_500_000_i64,
                            3_i32,
                            2_i32,
                            "1962661 Street, Adjuntas",
                            "00601",
                            Option::<&str>::None,
                            timestamp,
                            1_778_751_000_000_000_i64,
                        )
                    })
                    .collect();
                    if let [row] = rows.as_slice() {
                        session.execute_unpaged(insert, row).await?;
                    } else {
                        let mut batch = Batch::new(BatchType::Unlogged);
                        for _ in &rows {
                            batch.append_statement(insert.clone());
                        }
                        batch.set_consistency(scylla::statement::Consistency::One);
                        session.batch(&batch, &rows).await?;
                    }
                    Ok(vec![sent.elapsed().as_secs_f64(); rows.len()])
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut latencies: Vec<f64> = latencies.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let wall_seconds = started.elapsed().as_secs_f64();
    let (cpu, peak_rss_mib) = proc_usage(std::process::id())?;
    Ok(measured(
        records,
        wall_seconds,
        cpu - cpu_before,
        peak_rss_mib,
        &mut latencies,
    ))
}
