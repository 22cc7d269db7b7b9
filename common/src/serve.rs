//! The HTTP endpoints every homestream process serves: `/metrics` (Prometheus text
//! format), `/healthz` (the process is alive) and `/readyz` (it is connected and doing
//! work). A process binds them with [`bind`] before it starts work, so that a port
//! already taken stops it at once with the reason instead of leaving it running
//! without health endpoints.

use std::net::SocketAddr;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::shutdown::Shutdown;

/// Readiness shared between the worker, which sets it, and `/readyz`, which reports it.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready (or not) for `/readyz`.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// The endpoints' address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve /metrics, /healthz and /readyz on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why (typically "Address already in use").
    pub source: std::io::Error,
}

/// Binds the endpoints' address.
///
/// # Errors
/// When the address cannot be bound (taken, or not this host's).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves the endpoints on `listener` (see [`bind`]) until shutdown.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: Readiness,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let state = AppState {
        registry: Arc::new(registry),
        readiness,
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Serving /metrics, /healthz and /readyz.");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {error}"),
        ),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
