//! What every subcommand gets from `main`: where to serve its endpoints, the readiness
//! flag `/readyz` reports, and the shutdown signal.

use std::net::SocketAddr;

use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;

use crate::serve::{Readiness, serve};
use crate::shutdown::Shutdown;

/// The process-wide context of a runtime subcommand.
#[derive(Clone, Debug)]
pub struct Process {
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoints.
    pub listen: SocketAddr,
    /// What `/readyz` reports; the subcommand sets it once connected and working.
    pub readiness: Readiness,
    /// Resolves on SIGTERM or SIGINT.
    pub shutdown: Shutdown,
}

impl Process {
    /// Starts serving the endpoints with the metrics a subcommand registered in `registry`.
    pub fn serve(&self, registry: Registry) -> JoinHandle<std::io::Result<()>> {
        tokio::spawn(serve(
            self.listen,
            registry,
            self.readiness.clone(),
            self.shutdown.clone(),
        ))
    }
}
