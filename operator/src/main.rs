//! `homestream-operator`: runs the three controllers, serves `/metrics`, `/healthz` and
//! `/readyz`, and stops cleanly on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use futures::StreamExt;
use homestream_crds::{CassandraSink, ScrapeJob, StreamTransform};
use homestream_operator::config::OperatorConfig;
use homestream_operator::controller::{self, Context, cassandrasink, scrapejob, streamtransform};
use homestream_operator::metrics::Metrics;
use homestream_runtime::serve::{Readiness, serve};
use homestream_runtime::{shutdown, telemetry};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use prometheus_client::registry::Registry;

/// The homestream operator.
#[derive(Debug, Parser)]
#[command(name = "homestream-operator", version, about)]
struct Cli {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "HOMESTREAM_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HOMESTREAM_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// This replica's name (the pod name), for events.
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    #[command(flatten)]
    config: OperatorConfig,
}

/// An API for `K` in the watched namespace, or in all namespaces.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging();
    let (trigger, shutdown) = shutdown::channel();
    trigger.on_signals()?;
    let client = Client::try_default().await.context("connecting to the Kubernetes API")?;
    let mut registry = Registry::with_prefix("");
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
    let server = tokio::spawn(serve(cli.listen, registry, readiness.clone(), shutdown.clone()));
    let ctx = Arc::new(Context::new(client.clone(), cli.config.clone(), metrics, cli.instance.clone()));
    readiness.set(true);
    tracing::info!("Starting the ScrapeJob, StreamTransform and CassandraSink controllers.");
    let watch = watcher::Config::default;
    let namespace = cli.namespace.as_deref();
    let mut stop = shutdown.clone();
    let scrape_jobs = Controller::new(scoped::<ScrapeJob>(&client, namespace), watch())
        .owns(scoped::<Job>(&client, namespace), watch())
        .owns(scoped::<CronJob>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch())
        .graceful_shutdown_on(async move { stop.requested().await })
        .run(scrapejob::reconcile, controller::error_policy, ctx.clone())
        .for_each(|_| async {});
    let mut stop = shutdown.clone();
    let transforms = Controller::new(scoped::<StreamTransform>(&client, namespace), watch())
        .owns(scoped::<Deployment>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch())
        .graceful_shutdown_on(async move { stop.requested().await })
        .run(streamtransform::reconcile, controller::error_policy, ctx.clone())
        .for_each(|_| async {});
    let mut stop = shutdown.clone();
    let sinks = Controller::new(scoped::<CassandraSink>(&client, namespace), watch())
        .owns(scoped::<Deployment>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch())
        .graceful_shutdown_on(async move { stop.requested().await })
        .run(cassandrasink::reconcile, controller::error_policy, ctx.clone())
        .for_each(|_| async {});
    tokio::join!(scrape_jobs, transforms, sinks);
    tracing::info!("Controllers stopped.");
    server.await.context("metrics server task")?.context("metrics server")?;
    Ok(())
}
