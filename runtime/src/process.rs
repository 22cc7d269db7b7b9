//! What every subcommand gets from `main`: the bound address of its endpoints, the
//! readiness flag `/readyz` reports, and the shutdown signal.

use homestream_common::serve::{Readiness, serve};
use homestream_common::shutdown::Shutdown;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The process-wide context of a runtime subcommand.
#[derive(Debug)]
pub struct Process {
    /// The `/metrics`, `/healthz` and `/readyz` address, bound by `main` before any work
    /// (see [`homestream_common::serve::bind`]).
    pub listener: TcpListener,
    /// What `/readyz` reports; the subcommand sets it once connected and working.
    pub readiness: Readiness,
    /// Resolves on SIGTERM or SIGINT.
    pub shutdown: Shutdown,
}

/// A subcommand's context once its endpoints are served.
#[derive(Debug)]
pub struct Serving {
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// Resolves on SIGTERM or SIGINT.
    pub shutdown: Shutdown,
    /// The endpoints' server, which ends after shutdown.
    pub server: JoinHandle<std::io::Result<()>>,
}

impl Process {
    /// Serves the endpoints with the metrics a subcommand registered in `registry`.
    pub fn serve(self, registry: Registry) -> Serving {
        let server = tokio::spawn(serve(
            self.listener,
            registry,
            self.readiness.clone(),
            self.shutdown.clone(),
        ));
        Serving {
            readiness: self.readiness,
            shutdown: self.shutdown,
            server,
        }
    }
}
