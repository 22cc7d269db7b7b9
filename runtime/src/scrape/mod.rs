//! `scrape`: runs a ScrapeJob once. Pages come from headless Chromium ([`browser`]) or
//! plain HTTP ([`http`]), items from the extraction engine ([`extract`]), and records go
//! to the job's Kafka topic ([`output`]); [`crawl`] ties them together under the job's
//! politeness ([`politeness`], [`robots`]) and address policy ([`guard`]). [`preview`]
//! runs the same crawl from a manifest on the author's machine and prints the records.

pub mod browser;
pub mod crawl;
pub mod document;
pub mod egress;
pub mod extract;
pub mod guard;
pub mod http;
pub mod job;
pub mod metrics;
pub mod output;
pub mod page;
pub mod politeness;
pub mod preview;
pub mod robots;
pub mod script;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use homestream_crds::ScrapeJobSpec;
use homestream_crds::scrapejob::validate::ValidatedSource;
use prometheus_client::registry::Registry;

use crate::config;
use crate::process::Process;
use browser::{BrowserOptions, BrowserPool};
use crawl::{Completion, Crawl};
use homestream_common::shutdown::Shutdown;
use http::HttpClient;
use job::Job;
use metrics::Metrics;
use output::{KafkaOutput, Output, OutputError};

/// Environment variable naming the run (the operator sets the Job's name); unset, a
/// random id is used.
pub const RUN_NAME_ENV: &str = "HOMESTREAM_RUN_NAME";
/// Environment variable with the path the run totals are written to for the operator;
/// unset, Kubernetes' default termination message path.
pub const TERMINATION_LOG_ENV: &str = "HOMESTREAM_TERMINATION_LOG";

/// A run that failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Records could not be delivered.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The run took longer than `runTimeout`.
    #[error("the run did not finish within runTimeout ({0:?})")]
    Timeout(std::time::Duration),
}

/// Runs the ScrapeJob configured in `config`: serves the endpoints, crawls, publishes
/// to Kafka, and reports the totals.
///
/// # Errors
/// When the configuration is invalid, records cannot be delivered, no page could be
/// fetched, the run times out or is interrupted by SIGTERM.
pub async fn run(config: &Path, process: Process) -> Result<()> {
    let config = config::load::<ScrapeJobSpec>(config)?;
    let run = std::env::var(RUN_NAME_ENV).unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
    let job = Job::new(&config.spec, &config.resource, run, |name| {
        std::env::var(name).ok()
    })
    .with_context(|| {
        format!(
            "ScrapeJob {}/{}",
            config.resource.namespace, config.resource.name
        )
    })?;
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let process = process.serve(registry);
    let output = KafkaOutput::new(
        &config.kafka,
        job.spec.output.name.as_str(),
        &format!("homestream-scrape-{}", job.name.replace('/', "-")),
    )?;
    process.readiness.set(true);
    tracing::info!(
        job = job.name,
        run = job.run,
        topic = job.spec.output.name.as_str(),
        "Scrape run started."
    );
    let outcome = scrape(
        &job,
        &output,
        metrics.clone(),
        process.shutdown.clone(),
        BrowserOptions::from_env(),
    )
    .await;
    let flushed = output.flush();
    process.readiness.set(false);
    let totals = metrics.totals();
    let path = std::env::var_os(TERMINATION_LOG_ENV)
        .map_or_else(|| PathBuf::from("/dev/termination-log"), PathBuf::from);
    totals.report(&path);
    tracing::info!(
        pages_fetched = totals.pages_fetched,
        records_published = totals.records_published,
        empty_pages = totals.empty_pages,
        items_skipped = totals.items_skipped,
        errors = totals.errors,
        reasons = metrics.reasons().join("; "),
        "Scrape run finished."
    );
    process.server.abort();
    flushed?;
    match outcome? {
        Completion::Interrupted => {
            bail!("the run was stopped by a shutdown signal before it finished")
        }
        Completion::Finished if totals.pages_fetched == 0 => {
            bail!("no page could be fetched ({} errors)", totals.errors)
        }
        Completion::Finished => Ok(()),
    }
}

/// Crawls `job` with the fetcher its source calls for, publishing to `output`.
///
/// # Errors
/// When records cannot be delivered or the run exceeds `runTimeout`.
pub async fn scrape<O: Output>(
    job: &Job,
    output: &O,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    browser: BrowserOptions,
) -> Result<Completion, ScrapeError> {
    let http = Arc::new(HttpClient::new(job, metrics.clone())?);
    let crawl = async {
        match &job.spec.source {
            ValidatedSource::Http(_) => {
                Crawl::new(job, &*http, output, &metrics, shutdown)
                    .run()
                    .await
            }
            ValidatedSource::Browser(settings) => {
                let pool = BrowserPool::new(job, settings, http.clone(), browser);
                let outcome = Crawl::new(job, &pool, output, &metrics, shutdown)
                    .run()
                    .await;
                pool.close().await;
                outcome
            }
        }
    };
    match tokio::time::timeout(job.spec.run_timeout, crawl).await {
        Ok(outcome) => Ok(outcome?),
        Err(_) => Err(ScrapeError::Timeout(job.spec.run_timeout)),
    }
}
