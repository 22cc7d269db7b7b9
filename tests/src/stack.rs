//! Stopping and starting one service of the local stack, for fault tests.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, ensure};

/// The services `tests/env/stack start|stop` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The Kafka broker.
    Kafka,
    /// The Cassandra node.
    Cassandra,
    /// The S3 server.
    S3,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Kafka => "kafka",
            Self::Cassandra => "cassandra",
            Self::S3 => "s3",
        }
    }
}

fn stack_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("env/stack")
}

fn run(action: &str, service: Service) -> Result<()> {
    let status = Command::new("bash")
        .arg(stack_script())
        .args([action, service.name()])
        .status()
        .with_context(|| format!("running tests/env/stack {action} {}", service.name()))?;
    ensure!(
        status.success(),
        "tests/env/stack {action} {} failed: {status}",
        service.name()
    );
    Ok(())
}

/// Stops `service` (SIGTERM, then SIGKILL after 30 s); its data stays.
///
/// # Errors
/// When the stack script fails.
pub fn stop(service: Service) -> Result<()> {
    run("stop", service)
}

/// Starts `service` again and waits until its readiness probe passes.
///
/// # Errors
/// When the stack script fails or the service does not become ready.
pub fn start(service: Service) -> Result<()> {
    run("start", service)
}
