//! The scraper's Prometheus metrics, and the run totals (pages, records, empty pages,
//! skipped items, errors) that the operator puts in the ScrapeJob's `status.lastRun`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

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
    empty_pages: Counter,
    items_skipped: Family<Labels, Counter>,
    items_skipped_total: Counter,
    missing_fields: Family<Labels, Counter>,
    retries: Counter,
    browser_restarts: Counter,
    /// Why pages yielded no item and why items were skipped, in words, with how often:
    /// not metrics (the words hold selectors and field names), but the explanation a
    /// run's last log line and a preview give for what the counters show.
    reasons: Mutex<BTreeMap<String, u64>>,
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
            "Pages that failed after retries and documents that could not be read, by kind",
            self.errors.clone(),
        );
        registry.register(
            "empty_pages",
            "Results pages that yielded no item (the end of paged results excepted)",
            self.empty_pages.clone(),
        );
        registry.register(
            "items_skipped",
            "Items skipped for a missing key or required field, by reason",
            self.items_skipped.clone(),
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

    /// An error of `kind` (a page given up on, a document that could not be read).
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&[("kind", kind.to_owned())])
            .inc();
        self.errors_total.inc();
    }

    /// A results page yielded no item, for `reason`.
    pub fn empty_page(&self, reason: &str) {
        self.empty_pages.inc();
        self.note(format!("no item on a page: {reason}"), 1);
    }

    /// `n` items were skipped for `reason`; `kind` (`missing_key`, `missing_required`)
    /// labels the metric.
    pub fn items_skipped(&self, kind: &str, reason: &str, n: u64) {
        self.items_skipped
            .get_or_create(&[("reason", kind.to_owned())])
            .inc_by(n);
        self.items_skipped_total.inc_by(n);
        self.note(format!("item skipped: {reason}"), n);
    }

    fn note(&self, reason: String, n: u64) {
        *self
            .reasons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(reason)
            .or_default() += n;
    }

    /// Why pages yielded no item and items were skipped, each reason followed by how
    /// often it happened (pages or items) in parentheses, in alphabetical order.
    pub fn reasons(&self) -> Vec<String> {
        self.reasons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(reason, n)| format!("{reason} ({n})"))
            .collect()
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
            empty_pages: self.empty_pages.get(),
            items_skipped: self.items_skipped_total.get(),
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
    /// Results pages that yielded no item.
    pub empty_pages: u64,
    /// Items skipped for a missing key or required field.
    pub items_skipped: u64,
    /// Pages that failed after retries and documents that could not be read.
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
        metrics.items_skipped("missing_key", "the key id is missing", 1);
        let mut exposition = String::new();
        prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
        let scrape = |name: &str| name.starts_with("homestream_scrape_");
        homestream_tests::dashboard::check_exported(scrape, &exposition).unwrap();
    }
}
