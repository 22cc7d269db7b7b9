//! homestream on the local stack as on a cluster, for end-to-end tests: the operator
//! binary watching a test's namespace, its pods run by the stack's node from the
//! project's images.
//!
//! The binaries are the workspace's own (`target/<profile>/`): `cargo test --workspace`
//! builds them before any test runs; with `-p homestream-tests` alone, build them first
//! (`cargo build --workspace --bins`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Node;
use tokio::process::{Child, Command};

use crate::StackEnv;

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
            .envs(env.lake.operator_env()?)
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

/// The images the runtime pods run, as the operator names them by default: the
/// node's containerd resolves these Docker Hub names at the stack's own registry.
pub const RUNTIME_IMAGES: [&str; 2] = [
    concat!("homestream-scraper:", env!("CARGO_PKG_VERSION")),
    concat!("homestream-transformer:", env!("CARGO_PKG_VERSION")),
];

/// Checks, once per test binary, that the stack's node is Ready and that the registry
/// holds the runtime images, so a test fails up front with what to run instead of
/// waiting for pods stuck in `ErrImagePull`.
///
/// # Errors
/// When the node is not Ready or an image is missing.
pub async fn ensure_node(env: &StackEnv, client: &kube::Client) -> Result<()> {
    let node: Node = kube::Api::all(client.clone())
        .get(&env.node.name)
        .await
        .with_context(|| format!("node {} is not registered: make stack-up", env.node.name))?;
    let ready = node
        .status
        .and_then(|status| status.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ensure!(ready, "node {} is not Ready: make stack-up", env.node.name);
    for image in RUNTIME_IMAGES {
        let reference = format!("{}/{image}", env.node.registry);
        crate::run_cache_tool(env, "crane", &["digest", "--insecure", &reference])
            .await
            .with_context(|| format!("{reference} is not in the stack's registry: make images"))?;
    }
    Ok(())
}
