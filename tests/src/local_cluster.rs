//! homestream on the local stack as on a cluster, for end-to-end tests: the operator
//! binary watching a test's namespace, and one local node per test binary that runs
//! the runtime pods the operator creates.
//!
//! The binaries are the workspace's own (`target/<profile>/`): `cargo test --workspace`
//! builds them before any test runs; with `-p homestream-tests` alone, build them first
//! (`cargo build --workspace --bins`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use anyhow::{Context, Result, ensure};
use tokio::process::{Child, Command};

use crate::StackEnv;

/// The node the end-to-end tests run their pods on.
pub const E2E_NODE: &str = "homestream-e2e";

/// A binary of this workspace, next to the running test's own directory.
///
/// # Errors
/// When it has not been built.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test binary has no target directory")?;
    let path = dir.join(name);
    ensure!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        path.display()
    );
    Ok(path)
}

/// The operator watching one namespace; killed when dropped.
pub struct LocalOperator {
    _child: Child,
}

impl LocalOperator {
    /// Starts `homestream-operator --namespace namespace` against the stack, with a 2 s
    /// resync so status follows quickly.
    ///
    /// # Errors
    /// When the binary is missing or cannot start.
    pub fn start(env: &StackEnv, namespace: &str) -> Result<Self> {
        Self::start_with(env, namespace, &[])
    }

    /// [`Self::start`] with more flags, such as operator-wide Kafka security.
    ///
    /// # Errors
    /// When the binary is missing or cannot start.
    pub fn start_with(env: &StackEnv, namespace: &str, args: &[String]) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let binary = workspace_binary("homestream-operator")?;
        let child = operator_command(env, &binary, namespace, &format!("127.0.0.1:{port}"))
            .args(args)
            .env("POD_NAME", format!("homestream-operator-{namespace}"))
            .spawn()
            .context("starting homestream-operator")?;
        Ok(Self { _child: child })
    }
}

/// `binary --namespace namespace --listen listen` connected to the stack, with a 2 s
/// resync, its log on the test's stderr, killed when dropped.
pub fn operator_command(env: &StackEnv, binary: &Path, namespace: &str, listen: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--namespace", namespace, "--listen", listen])
        .env("KUBECONFIG", &env.kubeconfig)
        .env("HOMESTREAM_KAFKA_BOOTSTRAP", &env.kafka_bootstrap)
        .env(
            "HOMESTREAM_CASSANDRA_CONTACT_POINTS",
            &env.cassandra_contact_points,
        )
        .env("HOMESTREAM_RESYNC_SECONDS", "2")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// Starts the local node [`E2E_NODE`] once for this test binary; it stops, with every
/// pod process it runs, when the test binary exits. Its log is `node.log` in its
/// work directory (`$TMPDIR/homestream-e2e-node`).
///
/// # Errors
/// When a binary is missing or the node cannot start.
pub fn ensure_local_node() -> Result<()> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| start_local_node().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn start_local_node() -> Result<()> {
    let work_dir = std::env::temp_dir().join("homestream-e2e-node");
    std::fs::create_dir_all(&work_dir)?;
    let log = std::fs::File::create(work_dir.join("node.log"))?;
    // A std (not Tokio) child: it outlives the test that happened to start it.
    std::process::Command::new(workspace_binary("homestream-local-node")?)
        .arg("--runtime-bin")
        .arg(workspace_binary("homestream-runtime")?)
        .args(["--node-name", E2E_NODE, "--work-dir"])
        .arg(&work_dir)
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting homestream-local-node")?;
    Ok(())
}
