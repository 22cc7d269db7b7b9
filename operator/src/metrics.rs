//! The operator's Prometheus metrics: reconciles, failures by kind and error, reconcile
//! durations, and resources per kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-kind metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `ScrapeJob`, `StreamTransform`, `CassandraSink` or `DeltaSink`.
    pub kind: String,
}

/// Labels of failure metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The resource kind.
    pub kind: String,
    /// The failure's category, e.g. `KafkaUnavailable` or `InvalidSpec`.
    pub error: String,
}

/// The operator's metrics.
#[derive(Clone)]
pub struct Metrics {
    reconciles: Family<KindLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    durations: Family<KindLabels, Histogram>,
    resources: Family<KindLabels, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            failures: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            }),
            resources: Family::default(),
        };
        registry.register(
            "homestream_reconciles",
            "Reconciles run",
            metrics.reconciles.clone(),
        );
        registry.register(
            "homestream_reconcile_failures",
            "Reconciles that failed or found a resource failing, by error",
            metrics.failures.clone(),
        );
        registry.register(
            "homestream_reconcile_duration_seconds",
            "Time one reconcile took",
            metrics.durations.clone(),
        );
        registry.register(
            "homestream_resources",
            "Resources the operator manages",
            metrics.resources.clone(),
        );
        metrics
    }

    /// Counts one reconcile of `kind` that took `seconds`.
    pub fn reconciled(&self, kind: &str, seconds: f64) {
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    /// Counts a failure of `kind` in category `error`.
    pub fn failed(&self, kind: &str, error: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                error: error.to_owned(),
            })
            .inc();
    }

    /// Sets the number of resources of `kind`.
    pub fn set_resources(&self, kind: &str, count: usize) {
        self.resources
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's own tests check the `homestream_stream_` and `homestream_scrape_`
    /// metrics; every other one the dashboard reads is the operator's.
    #[test]
    fn every_operator_metric_the_dashboard_reads_is_exported() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        // A labelled family is exported once it has a series.
        metrics.reconciled("ScrapeJob", 0.01);
        metrics.failed("ScrapeJob", "KafkaUnavailable");
        metrics.set_resources("ScrapeJob", 1);
        let mut exposition = String::new();
        prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
        let operator = |name: &str| {
            !["homestream_stream_", "homestream_scrape_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        };
        homestream_tests::dashboard::check_exported(operator, &exposition).unwrap();
    }
}
