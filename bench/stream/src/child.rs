//! Measuring a runtime component's processes from outside: CPU time and peak memory
//! from `/proc`, records and latency from their metrics endpoints, start-up time from
//! their output.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use homestream_tests::{StackEnv, random_name};
use serde_json::{Value, json};

use crate::Measured;
use crate::first_output::{Output, Watch};

pub(crate) fn self_report(command: &mut Command) -> Result<Measured> {
    let output = command.stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        bail!("benchmark child failed: {}", output.status);
    }
    let text = String::from_utf8(output.stdout)?;
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .context("parsing a child's report")
}

/// A runtime component to measure.
pub(crate) struct Component<'a> {
    /// This binary's mode that runs it (`run-transform`, `run-sink`, ...).
    pub(crate) mode: &'a str,
    /// Its resource kind, for its config.
    pub(crate) kind: &'a str,
    pub(crate) spec: &'a Value,
    /// Processes in the same consumer group, as a Deployment's replicas.
    pub(crate) replicas: usize,
    /// The histogram its latency is read from.
    pub(crate) latency_histogram: &'a str,
    /// Where its output shows, for its start-up time.
    pub(crate) output: Output<'a>,
}

/// The component's processes, killed if a measurement fails half-way.
struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if child.try_wait().is_ok_and(|status| status.is_none()) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs a runtime component as child processes until their `records_out` together
/// reaches `records`.
pub(crate) async fn measure_component(
    exe: &Path,
    env: &StackEnv,
    component: &Component<'_>,
    records: usize,
) -> Result<Measured> {
    let Component { mode, kind, .. } = *component;
    let dir = std::env::temp_dir().join(random_name("bench"));
    std::fs::create_dir_all(&dir)?;
    let mut config = json!({
        "resource": {"kind": kind, "namespace": "bench", "name": random_name("bench"), "generation": 1},
        "spec": component.spec,
        "kafka": {"bootstrapServers": [env.kafka_bootstrap]},
    });
    if kind == "CassandraSink" {
        config["cassandra"] = json!({"contactPoints": [env.cassandra_contact_points]});
    }
    if kind == "DeltaSink" {
        config["s3"] = env.lake.resolved();
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_json::to_string(&config)?)?;
    let watch = Watch::start(env, component.output).await?;
    let started = Instant::now();
    let mut listens = Vec::new();
    let mut replicas = Replicas(Vec::new());
    for replica in 0..component.replicas {
        let listen = TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
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
        let child = command
            .args([path.to_str().unwrap_or_default(), &listen])
            .env("RUST_LOG", "warn")
            // One transactional id per replica, as pods have.
            .env("HOMESTREAM_INSTANCE", format!("bench-{replica}"))
            .envs(env.lake.credential_env())
            .spawn()
            .with_context(|| format!("starting {mode}"))?;
        replicas.0.push(child);
        listens.push(listen);
    }
    // The measurement starts when every replica is ready (program compiled, clients
    // created, Cassandra connected), as the bare loops' starts after their set-up.
    for listen in &listens {
        loop {
            exited(&mut replicas, mode)?;
            if http_get(listen, "/readyz")
                .await
                .is_ok_and(|(status, _)| status == 200)
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("{mode} was not ready within 2 minutes");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let window_start = Instant::now();
    let (cpu_before, _) = usage(&replicas)?;
    let out_before = records_out(&scrape(&listens).await?);
    let metrics = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        exited(&mut replicas, mode)?;
        let Ok(metrics) = scrape(&listens).await else {
            continue;
        };
        if records_out(&metrics) >= records as f64 {
            break metrics;
        }
        if window_start.elapsed() > Duration::from_secs(600) {
            bail!("{mode} did not finish within 10 minutes");
        }
    };
    let wall_seconds = window_start.elapsed().as_secs_f64();
    let (cpu_after, peaks) = usage(&replicas)?;
    for child in &mut replicas.0 {
        stop(child)?;
    }
    let startup_seconds = watch.seconds_after(started).await?;
    let quantile = |at| Some(histogram_quantile(&metrics, component.latency_histogram, at) * 1e3);
    Ok(Measured {
        records: (records_out(&metrics) - out_before) as u64,
        wall_seconds,
        cpu_seconds: cpu_after - cpu_before,
        peak_rss_mib: peaks.iter().sum(),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        startup_seconds,
        processes: if peaks.len() > 1 {
            (1..)
                .zip(&peaks)
                .map(|(replica, peak)| (format!("replica {replica}"), *peak))
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// Fails when a replica has exited.
fn exited(replicas: &mut Replicas, mode: &str) -> Result<()> {
    for child in &mut replicas.0 {
        if let Some(status) = child.try_wait()? {
            bail!("{mode} exited early: {status}");
        }
    }
    Ok(())
}

/// The replicas' CPU seconds together, and each one's peak resident MiB.
fn usage(replicas: &Replicas) -> Result<(f64, Vec<f64>)> {
    let usages = replicas
        .0
        .iter()
        .map(|child| proc_usage(child.id()))
        .collect::<Result<Vec<_>>>()?;
    Ok((
        usages.iter().map(|(cpu, _)| cpu).sum(),
        usages.iter().map(|(_, peak)| *peak).collect(),
    ))
}

/// Each replica's metrics.
async fn scrape(listens: &[String]) -> Result<Vec<String>> {
    let mut metrics = Vec::new();
    for listen in listens {
        metrics.push(http_get(listen, "/metrics").await?.1);
    }
    Ok(metrics)
}

fn records_out(metrics: &[String]) -> f64 {
    metrics
        .iter()
        .map(|text| metric(text, "homestream_stream_records_out_total"))
        .sum()
}

pub(crate) fn stop(child: &mut Child) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok(())
}

/// CPU seconds (user + system) and peak resident MiB of a live process.
pub(crate) fn proc_usage(pid: u32) -> Result<(f64, f64)> {
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
pub(crate) async fn http_get(listen: &str, path: &str) -> Result<(u16, String)> {
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

pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// A quantile from cumulative histogram buckets summed over the replicas' metrics,
/// interpolated linearly in the bucket.
pub(crate) fn histogram_quantile(texts: &[String], name: &str, quantile: f64) -> f64 {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (le, count) in texts
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            Some((
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse::<f64>().ok()?
                },
                count.trim().parse::<f64>().ok()?,
            ))
        })
    {
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, total)) => *total += count,
            None => buckets.push((le, count)),
        }
    }
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
