//! The ScrapeJob kind: fetch pages from a portal, extract listing records, publish them
//! to a Kafka topic, once or on a schedule.

pub mod crawl;
pub mod extract;
pub mod source;
pub mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connection::KafkaConnection;
use crate::deletion::DeletionPolicy;
use crate::format::cron::{CronSchedule, TimeZone};
use crate::format::duration::Duration;
use crate::topic::TopicOutput;
use crate::workload::PodTemplate;
use crawl::{Follow, Network, Politeness};
use extract::Extract;
use source::Source;

pub use validate::{Trigger, ValidatedScrapeJob};

/// Desired state of a ScrapeJob: where to fetch, what to extract, when, and where
/// the records go.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "homestream.io",
    version = "v1alpha1",
    kind = "ScrapeJob",
    namespaced,
    status = "ScrapeJobStatus",
    shortname = "sj",
    category = "homestream",
    doc = "A ScrapeJob fetches pages from a property portal (headless Chromium or plain HTTP), extracts one record per listing and publishes the records to a Kafka topic, once or on a schedule.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Whether the job is set up and its last run succeeded"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule", description = "Cron schedule; empty for a one-off run"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.output.topic.name", description = "Kafka topic the records go to"),
    printcolumn(name = "Last Success", type_ = "date", json_path = ".status.lastSuccessfulTime", description = "When the last successful run finished"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 52")
        .message("metadata.name must be at most 52 characters: it names the CronJob, whose Jobs add a suffix")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.schedule) || !(has(self.timeZone) || has(self.concurrencyPolicy) || has(self.successfulJobsHistoryLimit) || has(self.failedJobsHistoryLimit) || has(self.startingDeadlineSeconds))")
        .message("timeZone, concurrencyPolicy, successfulJobsHistoryLimit, failedJobsHistoryLimit and startingDeadlineSeconds need schedule"),
    validation = Rule::new("!has(self.extract.items.json) || has(self.extract.items.json.from) || has(self.extract.items.json.document) || has(self.source.http)")
        .message("extract.items.json without from reads the response body, which needs source.http"),
    validation = Rule::new("has(self.source.browser) || ((!has(self.extract.items.json) || !has(self.extract.items.json.from) || !(has(self.extract.items.json.from.expression) || has(self.extract.items.json.from.response))) && (!has(self.extract.documents) || self.extract.documents.all(d, !has(d.expression) && !has(d.response))) && (!has(self.follow) || !has(self.follow.detailPages) || ((!has(self.follow.detailPages.from) || !(has(self.follow.detailPages.from.expression) || has(self.follow.detailPages.from.response))) && (!has(self.follow.detailPages.documents) || self.follow.detailPages.documents.all(d, !has(d.expression) && !has(d.response))))))")
        .message("expression and response documents need source.browser"),
    validation = Rule::new("(!has(self.extract.documents) || self.extract.documents.all(d, !has(d.response) || (has(self.source.browser) && has(self.source.browser.captureResponses) && self.source.browser.captureResponses.exists(c, c.name == d.response)))) && (!has(self.follow) || !has(self.follow.detailPages) || !has(self.follow.detailPages.documents) || self.follow.detailPages.documents.all(d, !has(d.response) || (has(self.source.browser) && has(self.source.browser.captureResponses) && self.source.browser.captureResponses.exists(c, c.name == d.response))))")
        .message("a document's response must name one of source.browser.captureResponses"),
    validation = Rule::new("!has(self.extract.items.json) || !has(self.extract.items.json.from) || !has(self.extract.items.json.from.response) || (has(self.source.browser) && has(self.source.browser.captureResponses) && self.source.browser.captureResponses.exists(c, c.name == self.extract.items.json.from.response))")
        .message("extract.items.json.from.response must name one of source.browser.captureResponses"),
    validation = Rule::new("!has(self.follow) || !has(self.follow.detailPages) || !has(self.follow.detailPages.from) || !has(self.follow.detailPages.from.response) || (has(self.source.browser) && has(self.source.browser.captureResponses) && self.source.browser.captureResponses.exists(c, c.name == self.follow.detailPages.from.response))")
        .message("follow.detailPages.from.response must name one of source.browser.captureResponses"),
    validation = Rule::new("!has(self.follow) || !has(self.follow.detailPages) || has(self.follow.detailPages.link.jsonPath) == has(self.extract.items.json)")
        .message("follow.detailPages.link takes css for extract.items.css and jsonPath for extract.items.json"),
    validation = Rule::new("!has(self.follow) || !has(self.follow.nextPage) || !has(self.follow.nextPage.link.jsonPath) || has(self.extract.items.json)")
        .message("follow.nextPage.link.jsonPath reads the items' JSON document: it needs extract.items.json"),
    validation = Rule::new("!has(self.follow) || !has(self.follow.nextPage) || !has(self.source.http) || !has(self.source.http.pagination)")
        .message("use either source.http.pagination or follow.nextPage, not both")
)]
pub struct ScrapeJobSpec {
    /// How pages are fetched: exactly one of `browser` or `http`.
    pub source: Source,
    /// What to take from each page.
    pub extract: Extract,
    /// Links to follow: next pages and detail pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<Follow>,
    /// Limits that keep the scrape polite to the site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub politeness: Option<Politeness>,
    /// Which network addresses the scraper may reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Cron schedule of the runs (e.g. `0 */6 * * *` or `@daily`). Unset: one run,
    /// as soon as the ScrapeJob is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    /// Time zone of `schedule`, e.g. `Europe/London`. Unset: the controller manager's (usually UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZone>,
    /// Pause: no new run starts while true; a running one finishes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// What to do when a run is due while the previous one still runs: `Forbid` (the
    /// default: skip the new run), `Allow` or `Replace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Finished successful runs to keep, 0 to 100. Unset: 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: Option<i32>,
    /// Finished failed runs to keep, 0 to 100. Unset: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: Option<i32>,
    /// A run that could not start within this many seconds of its time is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub starting_deadline_seconds: Option<i64>,
    /// A run still going after this long (1m to 24h) is stopped and counts as failed.
    /// Unset: 1h.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_timeout: Option<Duration>,
    /// The topic the records go to.
    pub output: TopicOutput,
    /// What happens to the output topic when the ScrapeJob is deleted: `Retain` (the
    /// default) or `Delete` (only if the operator created it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Kafka connection settings for this ScrapeJob. Unset fields take the operator's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaConnection>,
    /// Overrides for the scraper pods (resources, scheduling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// What to do when a scheduled run is due while the previous one still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum ConcurrencyPolicy {
    /// Start the new run alongside.
    Allow,
    /// Skip the new run.
    #[default]
    Forbid,
    /// Stop the running one and start the new run.
    Replace,
}

/// Observed state of a ScrapeJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeJobStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `TopicReady`, `WorkloadReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The output topic as it exists in Kafka.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicStatus>,
    /// The most recent run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunStatus>,
    /// When the last successful run finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// When the next scheduled run is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
}

/// A Kafka topic as it exists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// Topic name.
    pub name: String,
    /// Partitions the topic has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Its replication factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
}

/// One run of a ScrapeJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// Name of the Job of the run.
    pub name: String,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it finished; unset while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Time>,
    /// Whether it succeeded; unset while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
    /// Pages fetched (results and detail pages, not counting retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages_fetched: Option<i64>,
    /// Records published to the topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_published: Option<i64>,
    /// Results pages that yielded no item: the items selector matched nothing (the
    /// scraper's log names each page and why). An empty page that ends paged results
    /// is not counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_pages: Option<i64>,
    /// Items skipped for a missing key or required field (the scraper's log names the
    /// page and the field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_skipped: Option<i64>,
    /// Pages that failed after retries, and documents that could not be read (not
    /// JSON, or absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<i64>,
}
