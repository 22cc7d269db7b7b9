//! Structured logging: JSON lines through `tracing`, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// What is logged when `RUST_LOG` is unset: homestream's own `info`, and only warnings
/// from the Delta libraries, whose `info` lines narrate every table load and commit.
pub const DEFAULT_FILTER: &str = "info,deltalake_core=warn,deltalake_aws=warn,buoyant_kernel=warn";

/// Installs the global JSON log subscriber; `RUST_LOG` filters (default [`DEFAULT_FILTER`]).
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
