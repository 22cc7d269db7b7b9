//! The DeltaSink's own metrics, under `homestream_delta_`, beside the stream metrics
//! every sink exports (records in and out, dead letters, lag, latencies).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Commits, files and bytes written, and what replays skipped.
#[derive(Clone, Debug)]
pub struct LakeMetrics {
    /// Table versions this process committed.
    pub commits: Counter,
    /// Commits refused because another writer committed the same partition first.
    pub conflicts: Counter,
    /// Data files committed.
    pub files: Counter,
    /// Bytes of data files committed.
    pub bytes: Counter,
    /// Records skipped because the table already holds them (replays).
    pub records_skipped: Counter,
    /// Files vacuum removed.
    pub files_vacuumed: Counter,
    /// The table version this process last committed or read.
    pub table_version: Gauge,
    /// From the start of a flush to its commit landing (files written and log entry).
    pub commit_seconds: Histogram,
}

impl LakeMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            commits: Counter::default(),
            conflicts: Counter::default(),
            files: Counter::default(),
            bytes: Counter::default(),
            records_skipped: Counter::default(),
            files_vacuumed: Counter::default(),
            table_version: Gauge::default(),
            // 10 ms to about 80 s, doubling.
            commit_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        };
        let registry = registry.sub_registry_with_prefix("homestream_delta");
        registry.register(
            "commits",
            "Table versions committed",
            metrics.commits.clone(),
        );
        registry.register(
            "conflicts",
            "Commits refused because another writer committed a partition first",
            metrics.conflicts.clone(),
        );
        registry.register("files", "Data files committed", metrics.files.clone());
        registry.register(
            "bytes",
            "Bytes of data files committed",
            metrics.bytes.clone(),
        );
        registry.register(
            "records_skipped",
            "Records skipped because the table already holds them",
            metrics.records_skipped.clone(),
        );
        registry.register(
            "files_vacuumed",
            "Unreferenced files vacuum removed",
            metrics.files_vacuumed.clone(),
        );
        registry.register(
            "table_version",
            "Latest table version this process committed or read",
            metrics.table_version.clone(),
        );
        registry.register(
            "commit_seconds",
            "From the start of a flush to its commit",
            metrics.commit_seconds.clone(),
        );
        metrics
    }
}
