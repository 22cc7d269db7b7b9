//! Shared pieces of the scraper's tests (and its benchmark): the loopback server and
//! loading the checked-in ScrapeJobs the way a user wrote them.

pub mod server;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use homestream_common::shutdown;
use homestream_crds::ScrapeJob;
use homestream_crds::runtime::ResourceIdentity;
use homestream_runtime::scrape::browser::BrowserOptions;
use homestream_runtime::scrape::crawl::Completion;
use homestream_runtime::scrape::job::Job;
use homestream_runtime::scrape::metrics::{Metrics, RunTotals};
use homestream_runtime::scrape::output::{Collect, Record};

/// The placeholder address the checked-in jobs use for the loopback server.
pub const PLACEHOLDER_ADDR: &str = "127.0.0.1:8000";
/// The API key the realtor replay expects, handed over as the Secret's variable.
pub const API_KEY: &str = "test-key";

/// A checked-in ScrapeJob manifest (`tests/integration/scrape/jobs/NAME.yaml`) pointed at `addr`.
pub fn manifest(name: &str, addr: &str) -> ScrapeJob {
    serde_yaml::from_str(&manifest_text(name, addr))
        .unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// The YAML of a checked-in ScrapeJob manifest pointed at `addr`, as a user's file.
pub fn manifest_text(name: &str, addr: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/scrape/jobs")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    text.replace(PLACEHOLDER_ADDR, addr)
}

/// The runtime's view of a manifest, with the realtor API key as its Secret variable.
pub fn job(manifest: &ScrapeJob) -> Job {
    let resource = ResourceIdentity {
        kind: "ScrapeJob".into(),
        namespace: manifest.metadata.namespace.clone().unwrap_or_default(),
        name: manifest.metadata.name.clone().unwrap_or_default(),
        generation: 1,
    };
    Job::new(&manifest.spec, &resource, "test-run".into(), |variable| {
        (variable == "HOMESTREAM_SECRET_RAPIDAPI_KEY").then(|| API_KEY.to_owned())
    })
    .unwrap()
}

/// Chromium as the local stack provides it, else as the runtime finds it
/// (`HOMESTREAM_CHROMIUM`, else the headless shell if installed).
pub fn browser_options() -> BrowserOptions {
    let executable = homestream_tests::StackEnv::load().map_or_else(
        |_| BrowserOptions::from_env().executable,
        |env| env.chromium,
    );
    BrowserOptions {
        executable,
        browsers: 1,
        hosts: HashMap::new(),
    }
}

/// Runs `job` into memory.
pub async fn scrape(job: &Job) -> (Vec<Record>, RunTotals, Completion) {
    let (records, metrics, completion) = scrape_metered(job).await;
    (records, metrics.totals(), completion)
}

/// Runs `job` into memory, keeping its metrics.
pub async fn scrape_metered(job: &Job) -> (Vec<Record>, Arc<Metrics>, Completion) {
    let metrics = Arc::new(Metrics::default());
    let output = Collect::default();
    let (_trigger, shutdown) = shutdown::channel();
    let completion = homestream_runtime::scrape::scrape(
        job,
        &output,
        metrics.clone(),
        shutdown,
        browser_options(),
    )
    .await
    .unwrap();
    (output.records(), metrics, completion)
}
