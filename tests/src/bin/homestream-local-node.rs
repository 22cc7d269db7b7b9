//! `homestream-local-node`: registers a Node with the local stack's apiserver and runs
//! the homestream runtime pods bound to it as local processes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use homestream_tests::node::pods::PodRunner;
use homestream_tests::node::process::Images;
use homestream_tests::node::registration;
use homestream_tests::{StackEnv, kubernetes};

fn usage() -> ! {
    eprintln!(
        "usage: homestream-local-node --runtime-bin PATH [--node-name NAME] [--work-dir DIR] \
         [--parent-pid PID]"
    );
    std::process::exit(2)
}

/// Resolves when process `pid` is gone (never without one): a test binary passes its
/// own pid, so the node and its pods stop with the tests that started it.
async fn exited(pid: Option<u32>) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    while proc.exists() {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let mut args = std::env::args().skip(1);
    let (mut runtime_bin, mut node, mut work_dir) = (None, "homestream-local".to_owned(), None);
    let mut parent = None;
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--runtime-bin" => runtime_bin = Some(PathBuf::from(value)),
            "--node-name" => node = value,
            "--work-dir" => work_dir = Some(PathBuf::from(value)),
            "--parent-pid" => parent = Some(value.parse::<u32>().context("--parent-pid")?),
            _ => usage(),
        }
    }
    let runtime_bin = runtime_bin.unwrap_or_else(|| usage());
    let work_dir = work_dir.unwrap_or_else(|| std::env::temp_dir().join("homestream-local-node"));
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    registration::register(&client, &node).await?;
    tokio::spawn(registration::heartbeat(client.clone(), node.clone()));
    // Both runtime images run the same binary: the scraper image only adds Chromium.
    let images = Images(BTreeMap::from([
        ("homestream-scraper".to_owned(), runtime_bin.clone()),
        ("homestream-transformer".to_owned(), runtime_bin),
    ]));
    tracing::info!(%node, "Local node is up.");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            () = exited(parent) => {}
        }
        tracing::info!("Stopping every pod's process.");
    };
    PodRunner {
        client,
        node,
        images,
        work_dir,
    }
    .run(shutdown)
    .await
    .context("watching pods")
}
