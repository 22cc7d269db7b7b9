//! Measuring a child from outside: its CPU time and peak memory from `/proc`, its
//! records and latency from its metrics endpoint.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use homestream_tests::{StackEnv, random_name};
use serde_json::{Value, json};

use crate::Measured;

pub(crate) fn self_report(command: &mut Command) -> Result<Measured> {
    let output = command.stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        bail!("benchmark child failed: {}", output.status);
    }
    let text = String::from_utf8(output.stdout)?;
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .context("parsing a child's report")
}

/// Runs a runtime component as a child until its `records_out` reaches `records`;
/// its latency is read from `latency_histogram`.
pub(crate) async fn measure_component(
    exe: &Path,
    mode: &str,
    env: &StackEnv,
    kind: &str,
    spec: &Value,
    records: usize,
    latency_histogram: &str,
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
    if kind == "DeltaSink" {
        config["s3"] = env.lake.resolved();
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
        .envs(env.lake.credential_env())
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
        histogram_quantile(&metrics, latency_histogram, 0.5),
        histogram_quantile(&metrics, latency_histogram, 0.99),
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

/// A quantile from cumulative histogram buckets, interpolated linearly in the bucket.
pub(crate) fn histogram_quantile(text: &str, name: &str, quantile: f64) -> f64 {
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
