//! The scraper's Prometheus metrics, and the run totals (pages, records, errors) that
//! the operator puts in the ScrapeJob's `status.lastRun`.

use std::path::Path;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;

type Labels = [(&'static str, String); 1];

/// Counters of one run.
#[derive(Debug, Default)]
pub struct Metrics {
    pages: Counter,
    records: Counter,
    errors: Family<Labels, Counter>,
    errors_total: Counter,
    missing_fields: Family<Labels, Counter>,
    retries: Counter,
    browser_restarts: Counter,
}

impl Metrics {
    /// Registers the counters in `registry` under `homestream_scrape_`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("homestream_scrape");
        registry.register(
            "pages_fetched",
            "Pages fetched (results and detail pages, not counting retries)",
            self.pages.clone(),
        );
        registry.register(
            "records_published",
            "Records acknowledged by Kafka",
            self.records.clone(),
        );
        registry.register(
            "errors",
            "Pages that failed after retries and items skipped, by kind",
            self.errors.clone(),
        );
        registry.register(
            "missing_fields",
            "Fields that could not be extracted and were set to null, by field",
            self.missing_fields.clone(),
        );
        registry.register(
            "retries",
            "Requests and page loads retried",
            self.retries.clone(),
        );
        registry.register(
            "browser_restarts",
            "Browsers restarted after they died or hung",
            self.browser_restarts.clone(),
        );
    }

    /// A page was fetched.
    pub fn page_fetched(&self) {
        self.pages.inc();
    }

    /// `n` records were acknowledged.
    pub fn records_published(&self, n: u64) {
        self.records.inc_by(n);
    }

    /// An error of `kind` (a page given up on, an item skipped, a delivery failure).
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&[("kind", kind.to_owned())])
            .inc();
        self.errors_total.inc();
    }

    /// A field could not be extracted.
    pub fn missing_field(&self, field: &str) {
        self.missing_fields
            .get_or_create(&[("field", field.to_owned())])
            .inc();
    }

    /// A request is retried.
    pub fn retry(&self) {
        self.retries.inc();
    }

    /// A browser was restarted.
    pub fn browser_restart(&self) {
        self.browser_restarts.inc();
    }

    /// Browsers restarted so far.
    pub fn browser_restarts(&self) -> u64 {
        self.browser_restarts.get()
    }

    /// The totals so far.
    pub fn totals(&self) -> RunTotals {
        RunTotals {
            pages_fetched: self.pages.get(),
            records_published: self.records.get(),
            errors: self.errors_total.get(),
        }
    }
}

/// What a run did, in the shape of `status.lastRun`'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTotals {
    /// Pages fetched.
    pub pages_fetched: u64,
    /// Records acknowledged by Kafka.
    pub records_published: u64,
    /// Errors.
    pub errors: u64,
}

impl RunTotals {
    /// Writes the totals as JSON to `path`, the container's termination message file
    /// (`/dev/termination-log` in Kubernetes), where the operator reads them from the
    /// finished pod's status. A missing or read-only file is logged, not fatal: the
    /// totals are also in the log and the metrics.
    pub fn report(&self, path: &Path) {
        let json = serde_json::to_string(self).unwrap_or_default();
        if let Err(error) = std::fs::write(path, &json) {
            tracing::debug!(path = %path.display(), %error, "Cannot write the termination message.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scrape_metric_the_dashboard_reads_is_exported() {
        let mut registry = Registry::default();
        let metrics = Metrics::default();
        metrics.register(&mut registry);
        // A labelled family is exported once it has a series.
        metrics.error("page");
        metrics.missing_field("price");
        let mut exposition = String::new();
        prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
        let scrape = |name: &str| name.starts_with("homestream_scrape_");
        homestream_tests::dashboard::check_exported(scrape, &exposition).unwrap();
    }
}
