//! Structured logging: JSON lines through `tracing`, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// What is logged when `RUST_LOG` is unset: homestream's own `info`, only warnings
/// from the Delta libraries, whose `info` lines narrate every table load and commit,
/// and only errors from chromiumoxide's handler.
///
/// chromiumoxide 0.9.1 (the newest release) generates its CDP types from an older
/// protocol than Debian's Chromium speaks: Chromium 156 sends the renamed
/// `localNetworkAccessRequestPolicy` in `Network.requestWillBeSentExtraInfo`, where
/// chromiumoxide requires `privateNetworkRequestPolicy`, so that event fails to parse
/// and the handler warns "WS Invalid message" for every request that carries a client
/// security state (a page's subresources, its favicon). Neither chromiumoxide nor
/// the browser fetcher reads that event, so the warning means nothing is wrong; the
/// handler's only other message, a broken DevTools connection, is an error and still
/// shows (the pool logs and counts a browser restart as well). The unparsed message
/// itself is at `debug` under `chromiumoxide::conn::raw_ws::parse_errors`.
pub const DEFAULT_FILTER: &str = "info,deltalake_core=warn,deltalake_aws=warn,buoyant_kernel=warn,\
                                  chromiumoxide::handler=error";

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
