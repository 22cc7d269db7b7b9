//! Running one pod's process like a kubelet would: start it, probe its readiness,
//! restart it per `restartPolicy` with backoff, report all of it in the pod's status,
//! and stop it (SIGTERM to its process group, SIGKILL after the grace period) when the
//! pod goes.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::process::{ProcessSpec, RestartPolicy};

/// First wait before a restart; it doubles up to [`MAX_BACKOFF`]. Shorter than the
/// kubelet's 10 s so that tests of restarts stay quick.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// One pod under supervision.
pub struct Supervised {
    /// The pod as it was bound.
    pub pod: Pod,
    /// Its process.
    pub spec: ProcessSpec,
    /// Where its log goes.
    pub log: PathBuf,
}

/// What became of one run of the process.
enum Ended {
    Exited(ExitStatus),
    Stopped,
}

/// Runs the pod until it ends (per its restart policy) or `stop` turns true, then
/// deletes its emptyDir volumes.
pub async fn supervise(client: Client, supervised: Supervised, stop: watch::Receiver<bool>) {
    run(client, &supervised, stop).await;
    for dir in &supervised.spec.dirs {
        // Best effort, like the kubelet's clean-up: a leftover directory harms nothing.
        let _ = tokio::fs::remove_dir_all(dir).await;
        if let Some(parent) = dir.parent() {
            let _ = tokio::fs::remove_dir(parent).await;
        }
    }
}

async fn run(client: Client, supervised: &Supervised, mut stop: watch::Receiver<bool>) {
    let pods: Api<Pod> = Api::namespaced(client, &supervised.pod.namespace().unwrap_or_default());
    let name = supervised.pod.name_any();
    let container = supervised
        .pod
        .spec
        .as_ref()
        .map(|s| s.containers[0].name.clone())
        .unwrap_or_default();
    let report = |status: Value| {
        let (pods, name) = (pods.clone(), name.clone());
        async move {
            let patch = json!({ "status": status });
            if let Err(error) = pods
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(pod = %name, %error, "Could not update the pod status.");
            }
        }
    };
    let started_at = Timestamp::now().to_string();
    let mut restarts = 0;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut child = match start(supervised).await {
            Ok(child) => child,
            Err(error) => {
                report(waiting(
                    &container,
                    restarts,
                    "RunContainerError",
                    &format!("{error:#}"),
                    &started_at,
                ))
                .await;
                return;
            }
        };
        report(running(&container, restarts, false, &started_at)).await;
        let ended = watch_run(&mut child, &supervised.spec, &mut stop, |ready| {
            report(running(&container, restarts, ready, &started_at))
        })
        .await;
        let status = match ended {
            Ended::Stopped => {
                terminate(&mut child, supervised.spec.grace).await;
                return;
            }
            Ended::Exited(status) => status,
        };
        let code = status.code().unwrap_or(137);
        let restart = match supervised.spec.restart_policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        };
        if !restart {
            let message = termination_message(supervised).await;
            report(terminated(
                &container,
                restarts,
                code,
                &message,
                &started_at,
            ))
            .await;
            return;
        }
        restarts += 1;
        let message = format!("exited with {code}; restarting in {}s", backoff.as_secs());
        report(waiting(
            &container,
            restarts,
            "CrashLoopBackOff",
            &message,
            &started_at,
        ))
        .await;
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop_requested(&mut stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn start(supervised: &Supervised) -> Result<Child> {
    let spec = &supervised.spec;
    for dir in &spec.dirs {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    for (path, content) in &spec.files {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(path, content)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&supervised.log)?;
    Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so stopping it also stops what it started (Chromium).
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))
}

async fn watch_run<F, Fut>(
    child: &mut Child,
    spec: &ProcessSpec,
    stop: &mut watch::Receiver<bool>,
    report: F,
) -> Ended
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ready = false;
    let mut probe = tokio::time::interval(PROBE_PERIOD);
    loop {
        tokio::select! {
            status = child.wait() => return Ended::Exited(status.unwrap_or_else(|_| exit_failure())),
            () = stop_requested(stop) => return Ended::Stopped,
            _ = probe.tick() => {
                let now_ready = match &spec.readiness {
                    Some((port, path)) => http_ok(*port, path).await,
                    None => true,
                };
                if now_ready != ready {
                    ready = now_ready;
                    report(ready).await;
                }
            }
        }
    }
}

/// Resolves once the pod is to stop (the guard of the watch value is not held across an await).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

fn exit_failure() -> ExitStatus {
    std::process::Command::new("false")
        .status()
        .unwrap_or_default()
}

/// SIGTERM to the process group, SIGKILL after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else { return };
    signal_group("-TERM", pid).await;
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group("-KILL", pid).await;
        let _ = child.wait().await;
    }
}

async fn signal_group(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .status()
        .await;
}

async fn http_ok(port: u16, path: &str) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn condition(type_: &str, ok: bool) -> Value {
    json!({ "type": type_, "status": if ok { "True" } else { "False" }, "lastTransitionTime": Timestamp::now().to_string() })
}

fn base(phase: &str, ready: bool, started_at: &str, container_status: Value) -> Value {
    json!({
        "phase": phase,
        "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{ "ip": "127.0.0.1" }],
        "startTime": started_at,
        "conditions": [
            condition("PodScheduled", true), condition("Initialized", true),
            condition("ContainersReady", ready), condition("Ready", ready)
        ],
        "containerStatuses": [container_status]
    })
}

fn running(container: &str, restarts: i32, ready: bool, started_at: &str) -> Value {
    base(
        "Running",
        ready,
        started_at,
        json!({
            "name": container, "ready": ready, "started": true, "restartCount": restarts,
            "image": "", "imageID": "",
            "state": { "running": { "startedAt": Timestamp::now().to_string() } }
        }),
    )
}

fn waiting(container: &str, restarts: i32, reason: &str, message: &str, started_at: &str) -> Value {
    base(
        "Running",
        false,
        started_at,
        json!({
            "name": container, "ready": false, "started": false, "restartCount": restarts,
            "image": "", "imageID": "",
            "state": { "waiting": { "reason": reason, "message": message } }
        }),
    )
}

/// What the process wrote to its termination message file (at most 4 KiB, like the kubelet).
async fn termination_message(supervised: &Supervised) -> String {
    let path = supervised
        .log
        .with_file_name(super::process::TERMINATION_LOG);
    let mut message = tokio::fs::read_to_string(path).await.unwrap_or_default();
    let cut = (0..=message.len().min(4096))
        .rev()
        .find(|i| message.is_char_boundary(*i))
        .unwrap_or(0);
    message.truncate(cut);
    message
}

fn terminated(container: &str, restarts: i32, code: i32, message: &str, started_at: &str) -> Value {
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    base(
        phase,
        false,
        started_at,
        json!({
            "name": container, "ready": false, "started": false, "restartCount": restarts,
            "image": "", "imageID": "",
            "state": { "terminated": {
                "exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "message": message,
                "finishedAt": Timestamp::now().to_string()
            } }
        }),
    )
}
