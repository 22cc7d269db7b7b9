//! `homestream-operator`: runs the four controllers, serves `/metrics`, `/healthz` and
//! `/readyz`, and stops cleanly on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use futures::StreamExt;
use homestream_common::serve::{self, Readiness};
use homestream_common::shutdown::{Shutdown, ShutdownTrigger};
use homestream_common::{shutdown, telemetry};
use homestream_crds::{CassandraSink, DeltaSink, ScrapeJob, StreamTransform};
use homestream_operator::config::OperatorConfig;
use homestream_operator::controller::topics::Declarations;
use homestream_operator::controller::{
    self, Context, cassandrasink, deltasink, scrapejob, streamtransform,
};
use homestream_operator::leader::{self, Attempt, LeaderElector};
use homestream_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;

/// The homestream operator.
#[derive(Debug, Parser)]
#[command(name = "homestream-operator", version, about)]
struct Cli {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "HOMESTREAM_OPERATOR_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    listen: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HOMESTREAM_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// This replica's name (the pod name), for events.
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    /// Run the controllers only while holding a Lease, so that several replicas can
    /// run with one active.
    #[arg(long, env = "HOMESTREAM_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "homestream-operator")]
    leader_election_lease: String,
    #[command(flatten)]
    config: OperatorConfig,
}

/// Waits until this replica holds the lease (or shutdown), then keeps renewing it in the
/// background; losing it triggers `lost`, which stops the controllers.
async fn lead(elector: Arc<LeaderElector>, mut shutdown: Shutdown, lost: ShutdownTrigger) -> bool {
    loop {
        match elector.try_acquire().await {
            Ok(Attempt::Leading) => break,
            Ok(Attempt::Following(holder)) => {
                tracing::info!(%holder, "Waiting for the leader lease.")
            }
            Err(error) => tracing::warn!(%error, "Could not read the leader lease."),
        }
        tokio::select! {
            () = tokio::time::sleep(leader::RENEW_INTERVAL) => {}
            () = shutdown.requested() => return false,
        }
    }
    tracing::info!("Acquired the leader lease.");
    tokio::spawn(async move {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(leader::RENEW_INTERVAL).await;
            match elector.try_acquire().await {
                Ok(Attempt::Leading) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::Following(holder)) => {
                    tracing::error!(%holder, "Lost the leader lease; stopping.");
                    break;
                }
                Err(error) if last_renewal.elapsed() > leader::LEASE_DURATION => {
                    tracing::error!(%error, "Could not renew the leader lease in time; stopping.");
                    break;
                }
                Err(error) => tracing::warn!(%error, "Could not renew the leader lease; retrying."),
            }
        }
        lost.trigger();
    });
    true
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

/// Keeps the per-kind resource gauges up to date from the controllers' caches.
async fn count_resources(declarations: Declarations, metrics: Metrics) {
    loop {
        metrics.set_resources("ScrapeJob", declarations.scrape_jobs.state().len());
        metrics.set_resources("StreamTransform", declarations.transforms.state().len());
        metrics.set_resources("CassandraSink", declarations.sinks.state().len());
        metrics.set_resources("DeltaSink", declarations.delta_sinks.state().len());
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// Runs `controller` with `reconcile` until `stop` resolves, letting running reconciles finish.
async fn run<K, F, Fut>(
    controller: Controller<K>,
    reconcile: F,
    ctx: Arc<Context>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, controller::Error>> + Send + 'static,
{
    controller
        .graceful_shutdown_on(stop)
        .run(reconcile, controller::error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

/// Resolves on SIGTERM or when the leader lease is lost.
async fn stopped(mut shutdown: Shutdown, mut lost: Shutdown) {
    tokio::select! {
        () = shutdown.requested() => {}
        () = lost.requested() => {}
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging();
    // deltalake's AWS SDK enables rustls's aws-lc-rs beside kube's ring: with two
    // providers rustls picks neither, so the process picks one before any client.
    // An error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port already taken stops the operator here, with the reason, before it leads.
    let listener = serve::bind(cli.listen).await?;
    // Unreadable credential files are a broken install: fail at start, not per resource.
    cli.config
        .kafka_security
        .admin
        .read()
        .context("reading the operator's Kafka credentials")?;
    cli.config
        .s3
        .admin
        .read()
        .context("reading the operator's S3 key")?;
    let (trigger, shutdown) = shutdown::channel();
    trigger.on_signals()?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
    let server = tokio::spawn(serve::serve(
        listener,
        registry,
        readiness.clone(),
        shutdown.clone(),
    ));
    let identity = cli
        .instance
        .clone()
        .unwrap_or_else(|| format!("homestream-operator-{}", std::process::id()));
    let (lost_trigger, lost) = shutdown::channel();
    let elector = cli.leader_election.then(|| {
        Arc::new(LeaderElector::new(
            client.clone(),
            &cli.leader_election_namespace,
            &cli.leader_election_lease,
            &identity,
        ))
    });
    readiness.set(true);
    if let Some(elector) = &elector
        && !lead(elector.clone(), shutdown.clone(), lost_trigger).await
    {
        server
            .await
            .context("metrics server task")?
            .context("metrics server")?;
        return Ok(());
    }
    let namespace = cli.namespace.as_deref();
    // Each controller is also woken by changes to the children it owns, so that a child
    // changed or deleted by hand is put back.
    let watch = watcher::Config::default;
    let scrape_jobs = Controller::new(scoped::<ScrapeJob>(&client, namespace), watch())
        .owns(scoped::<Job>(&client, namespace), watch())
        .owns(scoped::<CronJob>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch());
    let transforms = Controller::new(scoped::<StreamTransform>(&client, namespace), watch())
        .owns(scoped::<Deployment>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch());
    let sinks = Controller::new(scoped::<CassandraSink>(&client, namespace), watch())
        .owns(scoped::<Deployment>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch());
    let delta_sinks = Controller::new(scoped::<DeltaSink>(&client, namespace), watch())
        .owns(scoped::<Deployment>(&client, namespace), watch())
        .owns(scoped::<ConfigMap>(&client, namespace), watch());
    let declarations = Declarations {
        scrape_jobs: scrape_jobs.store(),
        transforms: transforms.store(),
        sinks: sinks.store(),
        delta_sinks: delta_sinks.store(),
    };
    tokio::spawn(count_resources(declarations.clone(), metrics.clone()));
    let ctx = Arc::new(Context::new(
        client.clone(),
        cli.config.clone(),
        metrics,
        declarations,
        cli.instance.clone(),
    ));
    tracing::info!(
        "Starting the ScrapeJob, StreamTransform, CassandraSink and DeltaSink controllers."
    );
    let stop = || stopped(shutdown.clone(), lost.clone());
    tokio::join!(
        run(scrape_jobs, scrapejob::reconcile, ctx.clone(), stop()),
        run(transforms, streamtransform::reconcile, ctx.clone(), stop()),
        run(sinks, cassandrasink::reconcile, ctx.clone(), stop()),
        run(delta_sinks, deltasink::reconcile, ctx.clone(), stop()),
    );
    tracing::info!("Controllers stopped.");
    if let Some(elector) = elector {
        if lost.is_requested() {
            anyhow::bail!("lost the leader lease");
        }
        elector
            .release()
            .await
            .context("releasing the leader lease")?;
    }
    server
        .await
        .context("metrics server task")?
        .context("metrics server")?;
    Ok(())
}
