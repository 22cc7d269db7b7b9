//! The crawl: walks a job's pages (start URLs, pagination, next-page links), extracts
//! the items of each, visits their detail pages, and publishes one record per item.
//!
//! Each start URL is a chain of results pages fetched in order (the next page is only
//! known from the previous one); chains and detail pages run concurrently, and a
//! semaphore holds the pages in flight to the job's `concurrency`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::StreamExt;
use futures::future::join_all;
use homestream_crds::scrapejob::validate::{PaginationMode, ValidatedPagination, ValidatedSource};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use url::Url;

use super::extract::{self, ExtractError, Item, PageItems, PageRules};
use super::job::Job;
use super::metrics::Metrics;
use super::output::{Output, OutputError, Record};
use super::page::{FetchError, FetchedPage, Fetcher, PageRequest};
use homestream_common::shutdown::Shutdown;

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every page was visited (some may have failed; see the error count).
    Finished,
    /// Shutdown was requested; what was extracted so far was published.
    Interrupted,
}

/// One run's crawl over `fetcher`, publishing to `output`.
pub struct Crawl<'a, F, O> {
    job: &'a Job,
    fetcher: &'a F,
    output: &'a O,
    metrics: &'a Metrics,
    shutdown: Shutdown,
    permits: Semaphore,
    detail_budget: AtomicU32,
}

impl<'a, F: Fetcher, O: Output> Crawl<'a, F, O> {
    /// Prepares a crawl.
    pub fn new(
        job: &'a Job,
        fetcher: &'a F,
        output: &'a O,
        metrics: &'a Metrics,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            job,
            fetcher,
            output,
            metrics,
            shutdown,
            permits: Semaphore::new(job.spec.politeness.concurrency.get() as usize),
            detail_budget: AtomicU32::new(
                job.spec
                    .detail_pages
                    .as_ref()
                    .map_or(0, |detail| detail.max_pages.get()),
            ),
        }
    }

    /// Crawls every chain to its end.
    ///
    /// # Errors
    /// When records cannot be delivered: the run must fail rather than lose them.
    pub async fn run(&self) -> Result<Completion, OutputError> {
        let chains: Vec<PageRequest> = match &self.job.spec.source {
            ValidatedSource::Browser(_) => self
                .job
                .start_urls
                .iter()
                .cloned()
                .map(PageRequest::get)
                .collect(),
            // The template renders to a valid URL: its scheme and host are literal.
            ValidatedSource::Http(_) => Pager::new(self.job).render().into_iter().collect(),
        };
        let results = join_all(chains.into_iter().map(|first| self.chain(first))).await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(if self.shutdown.is_requested() {
            Completion::Interrupted
        } else {
            Completion::Finished
        })
    }

    async fn chain(&self, first: PageRequest) -> Result<(), OutputError> {
        let mut pager = Pager::new(self.job);
        let mut request = Some(first);
        while let Some(current) = request.take() {
            let Some(page) = self.fetch(&current).await else {
                break;
            };
            let rules = PageRules {
                extract: &self.job.spec.extract,
                next_page: self.job.spec.next_page.as_ref().map(|next| &next.link),
                detail_link: self
                    .job
                    .spec
                    .detail_pages
                    .as_ref()
                    .map(|detail| &detail.link),
            };
            let items = match extract::page_items(rules, &page) {
                Ok(items) => items,
                Err(error) => {
                    tracing::warn!(url = %current.url, %error, "Cannot extract items.");
                    self.metrics.error("extract");
                    break;
                }
            };
            let source = page.url.clone().unwrap_or_else(|| current.url.clone());
            let first = pager.pages == 0;
            request = pager.next(&current, &page, &items);
            let PageItems {
                items,
                missing,
                empty_reason,
                unreadable,
                ..
            } = items;
            self.count_missing(&missing);
            self.report_unreadable(&source, &unreadable);
            if items.is_empty() {
                // An empty page after the first that ends its chain is how paged
                // results end (a page number past the last page): not a problem.
                self.report_empty(&source, empty_reason, !first && request.is_none());
            }
            let records = self.complete(items, &source).await;
            let count = records.len() as u64;
            self.output.publish(records).await?;
            self.metrics.records_published(count);
        }
        Ok(())
    }

    /// Fetches a page under a concurrency permit; `None` (counted) when it failed.
    async fn fetch(&self, request: &PageRequest) -> Option<FetchedPage> {
        if self.shutdown.is_requested() {
            return None;
        }
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.permits.acquire().await.ok()?;
        match self.fetcher.fetch(request).await {
            Ok(page) => Some(page),
            Err(error) => {
                self.report(&error);
                None
            }
        }
    }

    fn report(&self, error: &FetchError) {
        match error {
            FetchError::Refused { .. } => tracing::warn!(%error, "Refused to fetch a page."),
            FetchError::Disallowed { .. } => tracing::info!(%error, "Skipping a page."),
            _ => tracing::warn!(%error, "Giving up on a page."),
        }
        self.metrics.error(error.kind());
    }

    fn count_missing(&self, missing: &[String]) {
        for field in missing {
            self.metrics.missing_field(field);
        }
    }

    /// Counts and logs, once for the page, the documents its fields read that could not
    /// be read (those fields are null).
    fn report_unreadable(&self, url: &Url, unreadable: &[ExtractError]) {
        if unreadable.is_empty() {
            return;
        }
        for _ in unreadable {
            self.metrics.error("document");
        }
        let error = unreadable
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(%url, count = unreadable.len(), error, "Cannot read documents of a page; the fields they hold are null.");
    }

    /// Counts and logs a results page that yielded no item, unless it `ends_results`.
    fn report_empty(&self, url: &Url, reason: Option<String>, ends_results: bool) {
        let reason = reason.unwrap_or_else(|| "the page has no items".to_owned());
        if ends_results {
            tracing::debug!(%url, reason, "The paged results end.");
            return;
        }
        tracing::warn!(%url, reason, "A results page yielded no item.");
        self.metrics.empty_page(&reason);
    }

    /// Visits the items' detail pages, merges their fields and turns the items into
    /// records; items without their key or a required field are dropped, counted, and
    /// logged once for the page.
    async fn complete(&self, items: Vec<Item>, source: &Url) -> Vec<Record> {
        let concurrency = self.job.spec.politeness.concurrency.get() as usize;
        let merged: Vec<(Map<String, Value>, Option<Url>)> =
            futures::stream::iter(items.into_iter().map(|item| self.detail(item)))
                .buffered(concurrency)
                .collect()
                .await;
        let scraped_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut skipped = BTreeMap::<Skip, u64>::new();
        let records = merged
            .into_iter()
            .filter_map(|(fields, detail)| {
                self.record(fields, detail.as_ref(), source, &scraped_at)
                    .map_err(|skip| *skipped.entry(skip).or_default() += 1)
                    .ok()
            })
            .collect();
        self.report_skipped(source, &skipped);
        records
    }

    /// The record of an item, with its `_meta`; why not when it lacks its key or a
    /// required field.
    fn record(
        &self,
        mut fields: Map<String, Value>,
        detail: Option<&Url>,
        source: &Url,
        scraped_at: &str,
    ) -> Result<Record, Skip> {
        let spec = &self.job.spec;
        let required = spec
            .extract
            .fields
            .iter()
            .chain(spec.detail_pages.iter().flat_map(|detail| &detail.fields))
            .filter(|field| field.required);
        for field in required {
            if fields.get(&field.name).is_none_or(Value::is_null) {
                return Err(Skip::MissingRequired(field.name.clone()));
            }
        }
        let key = extract::key_of(&fields, &spec.extract.key)
            .ok_or_else(|| Skip::MissingKey(spec.extract.key.clone()))?;
        let mut meta = Map::new();
        meta.insert("sourceUrl".into(), source.as_str().into());
        if let Some(detail) = detail {
            meta.insert("detailUrl".into(), detail.as_str().into());
        }
        meta.insert("job".into(), self.job.name.clone().into());
        meta.insert("run".into(), self.job.run.clone().into());
        meta.insert("scrapedAt".into(), scraped_at.into());
        fields.insert("_meta".into(), Value::Object(meta));
        Ok(Record {
            key,
            value: Value::Object(fields),
        })
    }

    /// Counts the items of a page that were skipped, and logs them in one line.
    fn report_skipped(&self, url: &Url, skipped: &BTreeMap<Skip, u64>) {
        if skipped.is_empty() {
            return;
        }
        let reason = skipped
            .iter()
            .map(|(skip, n)| format!("{skip} ({n})"))
            .collect::<Vec<_>>()
            .join("; ");
        let count: u64 = skipped.values().sum();
        tracing::warn!(%url, count, reason, "Skipped items of a page.");
        for (skip, n) in skipped {
            self.metrics
                .items_skipped(skip.kind(), &skip.to_string(), *n);
        }
    }

    /// The item's fields with its detail page's merged in ([`extract::merge`]). A
    /// detail page that cannot be fetched or read leaves its fields null.
    async fn detail(&self, item: Item) -> (Map<String, Value>, Option<Url>) {
        let Item { mut fields, detail } = item;
        let Some(rules) = &self.job.spec.detail_pages else {
            return (fields, None);
        };
        let url = detail.filter(|_| {
            self.detail_budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
        });
        let page = match &url {
            Some(url) => self.fetch(&PageRequest::get(url.clone())).await,
            None => None,
        };
        let detail = page.and_then(|page| {
            extract::detail_fields(rules, &page)
                .inspect_err(|error| {
                    tracing::warn!(url = ?url.as_ref().map(Url::as_str), %error, "Cannot extract a detail page.");
                    self.metrics.error("extract");
                })
                .ok()
        });
        let mut missing = Vec::new();
        match detail {
            Some(detail) => {
                // A detail page was only fetched from its URL.
                if let Some(url) = &url {
                    self.report_unreadable(url, &detail.unreadable);
                }
                missing = detail.missing;
                extract::merge(&mut fields, detail.fields);
            }
            None => {
                for field in &rules.fields {
                    fields.entry(field.name.clone()).or_insert_with(|| {
                        missing.push(field.name.clone());
                        Value::Null
                    });
                }
            }
        }
        self.count_missing(&missing);
        (fields, url)
    }
}

/// Why an item is not a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    /// A field marked `required` is null.
    MissingRequired(String),
    /// The key field is absent, null or empty.
    MissingKey(String),
}

impl Skip {
    /// The `reason` label of `homestream_scrape_items_skipped_total`.
    fn kind(&self) -> &'static str {
        match self {
            Self::MissingRequired(_) => "missing_required",
            Self::MissingKey(_) => "missing_key",
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingRequired(field) => write!(f, "the required field {field} is null"),
            Self::MissingKey(key) => write!(f, "the key field {key} is null or empty"),
        }
    }
}

/// Which results page comes next: HTTP pagination, or the page's next-page link.
struct Pager<'a> {
    job: &'a Job,
    pages: u32,
    offset: u64,
    page_number: u64,
    cursor: String,
}

impl<'a> Pager<'a> {
    fn new(job: &'a Job) -> Self {
        let (offset, page_number) = match pagination(job).map(|p| &p.mode) {
            Some(PaginationMode::OffsetLimit { start, .. }) => (u64::from(*start), 0),
            Some(PaginationMode::PageNumber { start }) => (0, u64::from(*start)),
            _ => (0, 0),
        };
        Self {
            job,
            pages: 0,
            offset,
            page_number,
            cursor: String::new(),
        }
    }

    /// The request of an HTTP source for the current pagination state.
    fn render(&self) -> Option<PageRequest> {
        let ValidatedSource::Http(http) = &self.job.spec.source else {
            return None;
        };
        let limit = match pagination(self.job).map(|p| &p.mode) {
            Some(PaginationMode::OffsetLimit { limit, .. }) => limit.get(),
            _ => 0,
        };
        let value = |placeholder: homestream_crds::format::url::Placeholder| {
            use homestream_crds::format::url::Placeholder::{Cursor, Limit, Offset, Page};
            match placeholder {
                Offset => self.offset.to_string(),
                Limit => limit.to_string(),
                Page => self.page_number.to_string(),
                Cursor => self.cursor.clone(),
            }
        };
        let url = Url::parse(&http.url.render(value)).ok()?;
        Some(PageRequest {
            method: self.job.method.clone(),
            url,
            headers: self.job.headers.clone(),
            body: http.body.as_ref().map(|body| body.render(value)),
        })
    }

    /// The request after `page` (fetched with `request`), if any.
    fn next(
        &mut self,
        request: &PageRequest,
        page: &FetchedPage,
        items: &PageItems,
    ) -> Option<PageRequest> {
        self.pages += 1;
        if let Some(next_page) = &self.job.spec.next_page {
            if self.pages >= next_page.max_pages.get() {
                return None;
            }
            let url = items.next_page.clone()?;
            return Some(PageRequest {
                headers: self.job.headers.clone(),
                ..PageRequest::get(url)
            });
        }
        let pagination = pagination(self.job)?;
        if self.pages >= pagination.max_pages.get() {
            return None;
        }
        let count = items.items.len() as u64;
        match &pagination.mode {
            PaginationMode::OffsetLimit {
                limit, total_path, ..
            } => {
                self.offset += u64::from(limit.get());
                let more = match total_path {
                    Some(path) => json_at(page, path)
                        .and_then(|total| number(&total))
                        .is_some_and(|total| self.offset < total),
                    None => count >= u64::from(limit.get()),
                };
                if !more {
                    return None;
                }
            }
            PaginationMode::PageNumber { .. } => {
                if count == 0 {
                    return None;
                }
                self.page_number += 1;
            }
            PaginationMode::Cursor(path) => {
                self.cursor = json_at(page, path).and_then(|value| text(&value))?;
            }
            PaginationMode::NextLink(path) => {
                let next = json_at(page, path).and_then(|value| text(&value))?;
                let url = request.url.join(&next).ok()?;
                return Some(PageRequest {
                    url,
                    ..request.clone()
                });
            }
        }
        self.render()
    }
}

fn pagination(job: &Job) -> Option<&ValidatedPagination> {
    match &job.spec.source {
        ValidatedSource::Http(http) => http.pagination.as_ref(),
        ValidatedSource::Browser(_) => None,
    }
}

fn json_at(page: &FetchedPage, path: &serde_json_path::JsonPath) -> Option<Value> {
    let document: Value = serde_json::from_str(&page.body).ok()?;
    path.query(&document).first().cloned()
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A non-empty string or number, as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}
