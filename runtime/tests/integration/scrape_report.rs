//! What a run reports besides its records, so that nothing goes missing silently: a
//! results page that yields no item and items skipped for a missing required field are
//! counted in the run's totals (which become `status.lastRun`) and in the metrics, with
//! the reason in words; a document that cannot be read is counted and leaves its fields
//! null; the empty page that ends paged results is not a problem.

use homestream_runtime::scrape::metrics::{Metrics, RunTotals};
use prometheus_client::registry::Registry;

use crate::scrape::{self, job, manifest, server};

/// Asserts that the run's metrics, as Prometheus reads them, hold the sample `line`.
fn assert_exported(metrics: &Metrics, line: &str) {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.lines().any(|sample| sample == line),
        "no {line:?} in:\n{text}"
    );
}

#[tokio::test]
async fn a_page_without_items_is_counted_and_explained() {
    let server = server::start().await;
    let job = job(&manifest("site-empty", &server.addr.to_string()));
    let (records, metrics, _) = scrape::scrape_metered(&job).await;
    assert!(records.is_empty());
    assert_eq!(
        metrics.totals(),
        RunTotals {
            pages_fetched: 1,
            empty_pages: 1,
            ..RunTotals::default()
        }
    );
    assert_exported(&metrics, "homestream_scrape_empty_pages_total 1");
    let reasons = metrics.reasons();
    assert!(
        reasons.len() == 1
            && reasons[0].starts_with("no item on a page: ")
            && reasons[0].contains("extract.items.css")
            && reasons[0].ends_with(" (1)"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn items_without_a_required_field_are_counted_by_reason() {
    let server = server::start().await;
    let job = job(&manifest("site-required", &server.addr.to_string()));
    let (records, metrics, _) = scrape::scrape_metered(&job).await;
    assert!(records.is_empty());
    assert_eq!(
        metrics.totals(),
        RunTotals {
            pages_fetched: 1,
            items_skipped: 10,
            ..RunTotals::default()
        }
    );
    assert_exported(
        &metrics,
        "homestream_scrape_items_skipped_total{reason=\"missing_required\"} 10",
    );
    assert_eq!(
        metrics.reasons(),
        ["item skipped: the required field floorplan is null (10)"]
    );
}

#[tokio::test]
async fn the_empty_page_after_the_last_ends_paged_results_quietly() {
    let server = server::start().await;
    let job = job(&manifest("site-paged-api", &server.addr.to_string()));
    let (records, totals, _) = scrape::scrape(&job).await;
    // Pages 49 and 50 hold ten homes each; page 51 is empty and ends the paging.
    assert_eq!(records.len(), 20);
    assert_eq!(server.hits("/api/homes"), 3);
    assert_eq!(
        totals,
        RunTotals {
            pages_fetched: 3,
            records_published: 20,
            ..RunTotals::default()
        }
    );
}

#[tokio::test]
async fn a_field_document_that_cannot_be_read_is_counted_and_its_fields_left_null() {
    let server = server::start().await;
    let mut manifest = manifest("documents-ld", &server.addr.to_string());
    let extract = &mut manifest.spec.extract;
    extract
        .documents
        .as_mut()
        .unwrap()
        .push(serde_yaml::from_str("{name: state, assignment: window.__STATE__}").unwrap());
    extract
        .fields
        .push(serde_yaml::from_str("{name: area, document: state, jsonPath: $.area}").unwrap());
    let (records, metrics, _) = scrape::scrape_metered(&job(&manifest)).await;
    assert_eq!(records.len(), 3, "the items are still published");
    assert!(records.iter().all(|record| record.value["area"].is_null()));
    assert_eq!(
        (metrics.totals().pages_fetched, metrics.totals().errors),
        (1, 1),
        "one unreadable document on one page"
    );
    assert_exported(
        &metrics,
        "homestream_scrape_errors_total{kind=\"document\"} 1",
    );
}
