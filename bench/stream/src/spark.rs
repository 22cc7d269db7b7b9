//! The Spark Structured Streaming baseline (`baselines/spark`): the cleaning program as
//! a Spark job over the same records and topics as homestream's components, run as a
//! child process tree (the Python driver, its JVM, the JVM's Python workers) and
//! measured from outside as they are: the tree's CPU over Spark's own throughput window
//! (its first micro-batch's start to its last's end), each process's peak memory, and
//! the time from the driver's start to the first output the next stage sees.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use homestream_tests::{StackEnv, random_name};

use crate::Measured;
use crate::first_output::{Output, Watch};
use crate::table::Table;
use crate::tree::{Peak, Sampler};

pub(crate) const TRANSFORM: &str = "Spark: transform, SQL built-ins";
pub(crate) const TRANSFORM_UDF: &str = "Spark: transform, Python UDF";
pub(crate) const SINK: &str = "Spark: cleaned topic -> Cassandra";

/// A job of 1M records takes 1 to 2 minutes on 2 idle cores; the Python UDF's, and a
/// loaded machine's, several times that.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What the baseline runs on, made by `baselines/spark/setup.sh`.
pub(crate) struct Spark {
    python: PathBuf,
    jars: PathBuf,
}

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/spark")
}

impl Spark {
    /// Makes the venv and resolves the connectors (the first time: minutes).
    ///
    /// # Errors
    /// When setup.sh fails (PyPI or Maven Central not reachable, a package not served):
    /// its message.
    pub(crate) fn set_up() -> Result<Self> {
        eprintln!("Spark baseline: setting up (baselines/spark/setup.sh)...");
        let output = std::process::Command::new(baseline().join("setup.sh"))
            .stderr(Stdio::piped())
            .output()
            .context("running baselines/spark/setup.sh")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!(
                "baselines/spark/setup.sh failed ({}): {}",
                output.status,
                tail(&stderr, 5)
            );
        }
        let stdout = String::from_utf8(output.stdout)?;
        let mut lines = stdout.lines();
        match (lines.next(), lines.next()) {
            (Some(python), Some(jars)) => Ok(Self {
                python: python.into(),
                jars: jars.into(),
            }),
            _ => bail!("baselines/spark/setup.sh printed no python and jars: {stdout:?}"),
        }
    }
}

/// A Spark job over `input`.
#[derive(Clone, Copy)]
pub(crate) enum Job<'a> {
    /// The cleaning program in Spark SQL built-ins, into a topic.
    Transform(&'a str),
    /// The cleaning program as a Python UDF, into a topic.
    TransformUdf(&'a str),
    /// Cleaned records into the table `listings` of a keyspace.
    Sink(&'a str),
}

impl Job<'_> {
    pub(crate) fn row(self) -> &'static str {
        match self {
            Job::Transform(_) => TRANSFORM,
            Job::TransformUdf(_) => TRANSFORM_UDF,
            Job::Sink(_) => SINK,
        }
    }
}

/// What `stream.py` reports.
#[derive(serde::Deserialize)]
struct Report {
    records: u64,
    window_start: f64,
    window_end: f64,
    spark_version: String,
}

/// Measures `job` over the `records` records of `input` into `table`, or records why it
/// could not be measured: Spark missing or failing is reported, not fatal. True when
/// measured.
pub(crate) async fn measure_row(
    spark: &Result<Spark, String>,
    env: &StackEnv,
    job: Job<'_>,
    input: &str,
    records: usize,
    table: &mut Table,
) -> bool {
    let spark = match spark {
        Ok(spark) => spark,
        Err(reason) => {
            table.fail(job.row(), format!("Spark is not set up: {reason}"));
            return false;
        }
    };
    eprintln!("{}...", job.row());
    match measure(spark, env, job, input, records).await {
        Ok((measured, version)) => {
            table.record(job.row(), measured, None);
            if job.row() == TRANSFORM {
                table.note_once(format!(
                    "Spark: {version}, local[*], trigger availableNow (the backlog in one micro-batch), producer linger.ms 5 and batch.size 1 MB as librdkafka's, at least once; its sink at consistency ONE, 64 writes in flight, unlogged batches of at most 10 rows; CPU and memory of the driver, JVM and workers together."
                ));
            }
            true
        }
        Err(error) => {
            table.fail(job.row(), format!("{error:#}"));
            false
        }
    }
}

async fn measure(
    spark: &Spark,
    env: &StackEnv,
    job: Job<'_>,
    input: &str,
    records: usize,
) -> Result<(Measured, String)> {
    let dir = std::env::temp_dir().join(random_name("bench-spark"));
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("spark.log");
    let (name, output, target) = match job {
        Job::Transform(topic) => ("transform", Output::Topic(topic), topic.to_owned()),
        Job::TransformUdf(topic) => ("transform-udf", Output::Topic(topic), topic.to_owned()),
        Job::Sink(keyspace) => (
            "sink",
            Output::Table(keyspace),
            format!("{}/{keyspace}", first_contact_point(env)),
        ),
    };
    let watch = Watch::start(env, output).await?;
    let started = Instant::now();
    let child = tokio::process::Command::new(&spark.python)
        .arg(baseline().join("stream.py"))
        .arg(name)
        .arg(&spark.jars)
        .args([&env.kafka_bootstrap, input, &records.to_string()])
        .arg(dir.join("checkpoint"))
        .arg(&target)
        // The Python workers of a UDF run the venv's python too.
        .env("PYSPARK_PYTHON", &spark.python)
        // The driver's address, which local mode only uses within the machine.
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the Spark driver")?;
    let root = child.id().context("the Spark driver has no pid")?;
    let sampler = Sampler::start(root);
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("Spark did not finish within {TIMEOUT:?}"))??;
    let samples = sampler.finish();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !output.status.success() {
        bail!(
            "Spark {name} failed ({}); log {}: {}",
            output.status,
            log_path.display(),
            tail(&log, 8)
        );
    }
    let stdout = String::from_utf8(output.stdout)?;
    let report: Report = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("reading Spark's report {stdout:?}"))?;
    let startup_seconds = watch.seconds_after(started).await?;
    let processes = by_kind(root, &samples.peaks());
    std::fs::remove_dir_all(&dir)?;
    Ok((
        Measured {
            records: report.records,
            wall_seconds: report.window_end - report.window_start,
            cpu_seconds: samples.cpu_at(report.window_end) - samples.cpu_at(report.window_start),
            peak_rss_mib: processes.iter().map(|(_, mib)| mib).sum(),
            p50_ms: None,
            p99_ms: None,
            startup_seconds,
            processes,
        },
        report.spark_version,
    ))
}

/// The tree's peak memory by kind of process: the Python driver (`root`), the JVM, the
/// Python workers together, and anything else by its name.
fn by_kind(root: u32, peaks: &[Peak]) -> Vec<(String, f64)> {
    let mut kinds: Vec<(String, usize, f64)> = Vec::new();
    for peak in peaks {
        let kind = if peak.pid == root {
            "Python driver"
        } else if peak.name == "java" {
            "JVM"
        } else if peak.name.starts_with("python") {
            "Python workers"
        } else {
            peak.name.as_str()
        };
        match kinds.iter_mut().find(|(name, ..)| name == kind) {
            Some((_, count, mib)) => {
                *count += 1;
                *mib += peak.peak_rss_mib;
            }
            None => kinds.push((kind.to_owned(), 1, peak.peak_rss_mib)),
        }
    }
    kinds
        .into_iter()
        .map(|(name, count, mib)| {
            let name = if count > 1 {
                format!("{name} ({count})")
            } else {
                name
            };
            (name, mib)
        })
        .collect()
}

/// Spark's connector takes one host and a port.
fn first_contact_point(env: &StackEnv) -> &str {
    env.cassandra_contact_points
        .split(',')
        .next()
        .unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}
