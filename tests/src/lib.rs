//! Shared helpers for tests that run against the local stack (`tests/env/stack up`).
//!
//! The stack writes an env file with its endpoints; [`StackEnv::load`] reads it, with
//! variables already set in the process environment taking precedence, so the same
//! tests can point at another cluster or broker.

pub mod argocd;
pub mod chart;
pub mod chromium;
pub mod crds;
pub mod dashboard;
pub mod demo;
pub mod e2e;
pub mod kafka;
pub mod kubernetes;
pub mod lake;
pub mod local_cluster;
pub mod manifests;
pub mod secure_kafka;
pub mod stack;
pub mod wait;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// Endpoints of the local stack, as written by `tests/env/stack up`.
#[derive(Debug, Clone)]
pub struct StackEnv {
    /// Path of the kubeconfig for the local apiserver.
    pub kubeconfig: PathBuf,
    /// Kafka bootstrap servers (`host:port,...`).
    pub kafka_bootstrap: String,
    /// Cassandra contact points (`host:port,...`).
    pub cassandra_contact_points: String,
    /// Path of the Chromium executable.
    pub chromium: PathBuf,
    /// The broker's SASL_SSL listener.
    pub kafka_secure: SecureKafka,
    /// The broker's SSL listener that requires a client certificate.
    pub kafka_mutual_tls: MutualTlsKafka,
    /// The stack's node, which runs every pod.
    pub node: Node,
    /// The S3 server and the engines that read Delta tables there.
    pub lake: lake::Lake,
}

/// The stack's node: a kubelet with containerd, its pods on a bridge of their own.
#[derive(Debug, Clone)]
pub struct Node {
    /// The Node's name.
    pub name: String,
    /// The host's address on the pods' bridge: the only host address pods reach, where
    /// the stack's servers listen (and where a test's own server must listen for pods).
    pub host_ip: IpAddr,
    /// The registry (`host:port`, plain HTTP on loopback) the node pulls images from.
    pub registry: String,
}

/// How to reach the stack's Kafka over mutual TLS: the broker's certificate checked
/// against [`SecureKafka::ca_file`], the client's own signed by the same CA.
#[derive(Debug, Clone)]
pub struct MutualTlsKafka {
    /// Bootstrap servers of the SSL listener.
    pub bootstrap: String,
    /// The client certificate (PEM).
    pub certificate_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
}

/// How to reach the stack's Kafka over TLS with SCRAM credentials.
#[derive(Debug, Clone)]
pub struct SecureKafka {
    /// Bootstrap servers of the SASL_SSL listener.
    pub bootstrap: String,
    /// The CA certificate (PEM) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// The SCRAM user.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl StackEnv {
    /// Reads the stack's env file (`$HOMESTREAM_STATE/env`, by default
    /// `~/.local/state/homestream/env`); process environment variables win.
    ///
    /// # Errors
    /// When a variable is neither in the environment nor in the env file (the stack
    /// is not up).
    pub fn load() -> Result<Self> {
        let file_vars = read_env_file(&env_file_path()).unwrap_or_default();
        let var = |name: &str| -> Result<String> {
            std::env::var(name)
                .ok()
                .or_else(|| file_vars.get(name).cloned())
                .with_context(|| {
                    format!(
                        "{name} is not set and not in {}: is the local stack up? (make stack-up)",
                        env_file_path().display()
                    )
                })
        };
        Ok(Self {
            kubeconfig: var("KUBECONFIG")?.into(),
            kafka_bootstrap: var("HOMESTREAM_KAFKA_BOOTSTRAP")?,
            cassandra_contact_points: var("HOMESTREAM_CASSANDRA_CONTACT_POINTS")?,
            chromium: var("HOMESTREAM_CHROMIUM")?.into(),
            kafka_secure: SecureKafka {
                bootstrap: var("HOMESTREAM_KAFKA_SECURE_BOOTSTRAP")?,
                ca_file: var("HOMESTREAM_KAFKA_CA_FILE")?.into(),
                username: var("HOMESTREAM_KAFKA_SCRAM_USER")?,
                password: var("HOMESTREAM_KAFKA_SCRAM_PASSWORD")?,
            },
            kafka_mutual_tls: MutualTlsKafka {
                bootstrap: var("HOMESTREAM_KAFKA_MTLS_BOOTSTRAP")?,
                certificate_file: var("HOMESTREAM_KAFKA_CLIENT_CERTIFICATE_FILE")?.into(),
                key_file: var("HOMESTREAM_KAFKA_CLIENT_KEY_FILE")?.into(),
            },
            node: Node {
                name: var("HOMESTREAM_NODE_NAME")?,
                host_ip: var("HOMESTREAM_NODE_IP")?
                    .parse()
                    .context("HOMESTREAM_NODE_IP is not an IP address")?,
                registry: var("HOMESTREAM_REGISTRY")?,
            },
            lake: lake::Lake {
                endpoint: var("HOMESTREAM_S3_ENDPOINT")?,
                region: var("HOMESTREAM_S3_REGION")?,
                bucket: var("HOMESTREAM_S3_BUCKET")?,
                access_key_id: var("HOMESTREAM_S3_ACCESS_KEY_ID")?,
                secret_access_key: var("HOMESTREAM_S3_SECRET_ACCESS_KEY")?,
                python: var("HOMESTREAM_LAKE_PYTHON")?.into(),
                query_script: var("HOMESTREAM_LAKE_QUERY")?.into(),
            },
        })
    }
}

/// Runs the cache tool `name` (see [`cache_tool`]) with `args` against the stack's
/// apiserver and returns its standard output.
///
/// # Errors
/// When the tool is missing or fails; the error carries its standard error.
pub async fn run_cache_tool(env: &StackEnv, name: &str, args: &[&str]) -> Result<String> {
    let output = tokio::process::Command::new(cache_tool(name)?)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .await
        .with_context(|| format!("running {name}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{name} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A tool the stack scripts install into `$HOMESTREAM_CACHE/bin` (helm, kubectl,
/// promtool).
///
/// # Errors
/// When it is missing (the stack scripts have not run).
pub fn cache_tool(name: &str) -> Result<PathBuf> {
    let cache = match std::env::var_os("HOMESTREAM_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/homestream"),
    };
    let path = cache.join("bin").join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run tests/env/stack up",
        path.display()
    );
    Ok(path)
}

fn env_file_path() -> PathBuf {
    let state = std::env::var_os("HOMESTREAM_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".local/state/homestream")
        });
    state.join("env")
}

fn read_env_file(path: &std::path::Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// A random lower-case name with a prefix, for namespaces, topics and keyspaces that
/// must not collide between tests or runs.
pub fn random_name(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..10])
}
