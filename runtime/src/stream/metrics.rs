//! The Prometheus metrics both stream components export under `homestream_stream_`.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Counters, lag and latencies of a transform or sink.
#[derive(Clone, Debug)]
pub struct StreamMetrics {
    /// Records read from the input topic.
    pub records_in: Counter,
    /// Records written (to the output topic, or as rows), counted once committed.
    pub records_out: Counter,
    /// Records sent to the dead-letter topic.
    pub records_dead_lettered: Counter,
    /// Records dropped (the program aborted, or `onError: Drop`).
    pub records_dropped: Counter,
    /// Transactions aborted or writes retried after a transient failure.
    pub retries: Counter,
    /// Records in the input topic not yet consumed, summed over assigned partitions.
    pub consumer_lag: Gauge,
    /// From receiving a record to its result being committed (transaction committed
    /// or row acknowledged).
    pub processing_seconds: Histogram,
    /// From the record's Kafka timestamp to its result being committed.
    pub end_to_end_seconds: Histogram,
}

/// Latency buckets from 0.5 ms to about 33 s, doubling: fine enough for the
/// percentiles the benchmark reads back, few enough to keep `/metrics` small.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 17)
}

impl StreamMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            records_in: Counter::default(),
            records_out: Counter::default(),
            records_dead_lettered: Counter::default(),
            records_dropped: Counter::default(),
            retries: Counter::default(),
            consumer_lag: Gauge::default(),
            processing_seconds: Histogram::new(latency_buckets()),
            end_to_end_seconds: Histogram::new(latency_buckets()),
        };
        let registry = registry.sub_registry_with_prefix("homestream_stream");
        registry.register(
            "records_in",
            "Records read from the input topic",
            metrics.records_in.clone(),
        );
        registry.register(
            "records_out",
            "Records written and committed",
            metrics.records_out.clone(),
        );
        registry.register(
            "records_dead_lettered",
            "Records sent to the dead-letter topic",
            metrics.records_dead_lettered.clone(),
        );
        registry.register(
            "records_dropped",
            "Records dropped",
            metrics.records_dropped.clone(),
        );
        registry.register(
            "retries",
            "Transactions aborted or writes retried",
            metrics.retries.clone(),
        );
        registry.register(
            "consumer_lag",
            "Input records not yet consumed",
            metrics.consumer_lag.clone(),
        );
        registry.register(
            "processing_seconds",
            "From receiving a record to committing its result",
            metrics.processing_seconds.clone(),
        );
        registry.register(
            "end_to_end_seconds",
            "From a record's Kafka timestamp to committing its result",
            metrics.end_to_end_seconds.clone(),
        );
        metrics
    }

    /// Observes the latencies of a record committed `received` ago whose Kafka
    /// timestamp is `timestamp_ms`.
    pub fn observe_committed(&self, received: Duration, timestamp_ms: Option<i64>, now_ms: i64) {
        self.processing_seconds.observe(received.as_secs_f64());
        if let Some(timestamp_ms) = timestamp_ms {
            #[allow(clippy::cast_precision_loss)]
            let seconds = now_ms.saturating_sub(timestamp_ms).max(0) as f64 / 1000.0;
            self.end_to_end_seconds.observe(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_metric_the_dashboard_reads_is_exported() {
        let mut registry = Registry::default();
        StreamMetrics::register(&mut registry);
        let mut exposition = String::new();
        prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
        let stream = |name: &str| name.starts_with("homestream_stream_");
        homestream_tests::dashboard::check_exported(stream, &exposition).unwrap();
    }
}
