//! The runtime's integration tests: one binary. The stream tests need the local stack's Kafka and Cassandra; the scrape tests need Chromium and serve their own site (and the captures of `../shared/fixtures/real/` when present).

mod endpoints;
mod kafka_security;
#[allow(
    dead_code,
    reason = "shared with the browser recovery binary (scrape_browser.rs), each using a part"
)]
mod scrape;
mod scrape_documents;
mod scrape_fixtures;
mod scrape_kafka;
mod scrape_preview;
mod scrape_report;
mod stream_delta;
mod stream_sink;
mod stream_support;
mod stream_transform;
