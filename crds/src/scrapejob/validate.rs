//! Parsing a ScrapeJob spec into [`ValidatedScrapeJob`]: selectors, JSONPaths, regexes,
//! durations and the schedule are parsed, pagination placeholders checked against the
//! pagination mode, and defaults filled in.

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use super::crawl::{Follow, Link, Politeness};
use super::extract::{Extract, Field, JsonDocument};
use super::source::{BrowserSource, HttpMethod, HttpSource, Pagination, ResourceType, Source};
use super::{ConcurrencyPolicy, ScrapeJobSpec};
use crate::deletion::DeletionPolicy;
use crate::format::cron::{CronSchedule, Schedule, TimeZone};
use crate::format::duration::Duration;
use crate::format::jsonpath::JsonPath;
use crate::format::url::{Placeholder, Template};
use crate::topic::{self, TopicSpec};
use crate::validation::{InvalidSpec, Problems};

const DEFAULT_WAIT_TIMEOUT: StdDuration = StdDuration::from_secs(30);
const DEFAULT_REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(30);
const DEFAULT_BACKOFF_INITIAL: StdDuration = StdDuration::from_secs(1);
const DEFAULT_BACKOFF_MAX: StdDuration = StdDuration::from_secs(60);
const DEFAULT_RUN_TIMEOUT: StdDuration = StdDuration::from_secs(3600);
const DEFAULT_VIEWPORT: (u32, u32) = (1366, 900);
const DEFAULT_BLOCKED: [ResourceType; 3] =
    [ResourceType::Image, ResourceType::Font, ResourceType::Media];

/// A ScrapeJob spec that parsed, with defaults filled in: what the operator builds from.
#[derive(Debug, Clone)]
pub struct ValidatedScrapeJob {
    /// How pages are fetched.
    pub source: ValidatedSource,
    /// What is extracted.
    pub extract: ValidatedExtract,
    /// Next-page links to follow, with the page bound.
    pub next_page: Option<ValidatedNextPage>,
    /// Detail pages to visit.
    pub detail_pages: Option<ValidatedDetailPages>,
    /// Politeness limits.
    pub politeness: ValidatedPoliteness,
    /// Whether private, loopback and link-local addresses may be reached.
    pub allow_private_addresses: bool,
    /// When runs happen.
    pub trigger: Trigger,
    /// Longest run.
    pub run_timeout: StdDuration,
    /// The output topic.
    pub output: TopicSpec,
    /// What happens to the topic on deletion.
    pub deletion_policy: DeletionPolicy,
}

/// How pages are fetched.
#[derive(Debug, Clone)]
pub enum ValidatedSource {
    /// Headless Chromium.
    Browser(ValidatedBrowser),
    /// Plain HTTP.
    Http(ValidatedHttp),
}

/// A browser source.
#[derive(Debug, Clone)]
pub struct ValidatedBrowser {
    /// Pages to load first.
    pub start_urls: Vec<String>,
    /// Host patterns the page may load from (`*.` prefix for subdomains).
    pub allowed_hosts: Vec<String>,
    /// Element to wait for.
    pub wait_selector: Option<scraper::Selector>,
    /// Whether to wait for network idle.
    pub wait_network_idle: bool,
    /// Page load timeout.
    pub wait_timeout: StdDuration,
    /// Resource types not downloaded.
    pub block_resource_types: Vec<ResourceType>,
    /// Window width and height.
    pub viewport: (u32, u32),
    /// Responses to capture, by name.
    pub capture_responses: Vec<(String, regex::Regex)>,
}

/// An HTTP source.
#[derive(Debug, Clone)]
pub struct ValidatedHttp {
    /// Request method.
    pub method: HttpMethod,
    /// URL of each request.
    pub url: Template,
    /// Request body of each request.
    pub body: Option<Template>,
    /// Headers as declared (Secret references are resolved by the runtime).
    pub headers: Vec<super::source::Header>,
    /// Paging.
    pub pagination: Option<ValidatedPagination>,
}

/// Paging through an API.
#[derive(Debug, Clone)]
pub struct ValidatedPagination {
    /// The mode.
    pub mode: PaginationMode,
    /// Page bound.
    pub max_pages: NonZeroU32,
}

/// Paging modes.
#[derive(Debug, Clone)]
pub enum PaginationMode {
    /// Offset steps by limit.
    OffsetLimit {
        /// Page size.
        limit: NonZeroU32,
        /// First offset.
        start: u32,
        /// Where the total is.
        total_path: Option<serde_json_path::JsonPath>,
    },
    /// Page numbers from `start`.
    PageNumber {
        /// First page.
        start: u32,
    },
    /// Cursor read from each response.
    Cursor(serde_json_path::JsonPath),
    /// Next URL read from each response.
    NextLink(serde_json_path::JsonPath),
}

impl PaginationMode {
    /// The placeholders the mode fills in; a template must use the first of them.
    fn placeholders(&self) -> &'static [Placeholder] {
        match self {
            Self::OffsetLimit { .. } => &[Placeholder::Offset, Placeholder::Limit],
            Self::PageNumber { .. } => &[Placeholder::Page],
            Self::Cursor(_) => &[Placeholder::Cursor],
            Self::NextLink(_) => &[],
        }
    }
}

/// Extraction.
#[derive(Debug, Clone)]
pub struct ValidatedExtract {
    /// Where the items are.
    pub items: ValidatedItems,
    /// Item fields.
    pub fields: Vec<ValidatedField>,
    /// Name of the key field.
    pub key: String,
}

/// Where the items are.
#[derive(Debug, Clone)]
pub enum ValidatedItems {
    /// Elements matching a selector.
    Css(scraper::Selector),
    /// Values a JSONPath selects in a document.
    Json {
        /// The document.
        from: DocumentSource,
        /// The items' path.
        path: serde_json_path::JsonPath,
    },
}

/// A JSON document of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    /// The response body.
    Body,
    /// The text of the first script matching the selector.
    Script(scraper::Selector),
    /// A JavaScript expression's value.
    Expression(String),
    /// A captured response, by name.
    Response(String),
}

/// A field.
#[derive(Debug, Clone)]
pub struct ValidatedField {
    /// Record field name.
    pub name: String,
    /// Where the value is.
    pub value: FieldValue,
    /// Narrowing regex.
    pub regex: Option<regex::Regex>,
    /// Whether items without it are skipped.
    pub required: bool,
}

/// Where a field's value is.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// In the DOM.
    Dom {
        /// Element relative to the item; `None` is the item itself.
        css: Option<scraper::Selector>,
        /// Attribute; `None` is the text.
        attribute: Option<String>,
    },
    /// In the item's JSON.
    Json(serde_json_path::JsonPath),
}

/// A link element of the DOM.
#[derive(Debug, Clone)]
pub struct ValidatedLink {
    /// The link element.
    pub css: scraper::Selector,
    /// The attribute holding the URL.
    pub attribute: String,
}

/// Next-page links.
#[derive(Debug, Clone)]
pub struct ValidatedNextPage {
    /// The link on each page: in its DOM, or in the document its JSON items come from.
    pub link: PageLink,
    /// Pages per start URL.
    pub max_pages: NonZeroU32,
}

/// Where a link to another page is: in the DOM (of the page or of a CSS item), or in
/// JSON (the items' document or a JSON item).
#[derive(Debug, Clone)]
pub enum PageLink {
    /// An element.
    Css(ValidatedLink),
    /// A value, resolved against the page URL.
    Json(serde_json_path::JsonPath),
}

/// Detail pages.
#[derive(Debug, Clone)]
pub struct ValidatedDetailPages {
    /// The link from the item.
    pub link: PageLink,
    /// The JSON document `jsonPath` fields read, if any.
    pub from: Option<DocumentSource>,
    /// Fields read there.
    pub fields: Vec<ValidatedField>,
    /// Bound per run.
    pub max_pages: NonZeroU32,
}

/// Politeness, with defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPoliteness {
    /// Pages in flight.
    pub concurrency: NonZeroU32,
    /// Rate per host.
    pub requests_per_second_per_host: f64,
    /// Whether robots.txt is obeyed.
    pub respect_robots_txt: bool,
    /// Retries per request.
    pub retries: u32,
    /// First backoff.
    pub backoff_initial: StdDuration,
    /// Longest backoff.
    pub backoff_max: StdDuration,
    /// Request timeout.
    pub timeout: StdDuration,
    /// User-Agent override.
    pub user_agent: Option<String>,
}

/// When runs happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// One run (a Job).
    Once {
        /// Whether the run is held back.
        suspend: bool,
    },
    /// Runs on a schedule (a CronJob).
    Scheduled {
        /// The schedule as written (a CronJob takes it verbatim).
        schedule: CronSchedule,
        /// The parsed schedule.
        parsed: Schedule,
        /// Its time zone.
        time_zone: Option<TimeZone>,
        /// Whether new runs are held back.
        suspend: bool,
        /// Overlap policy.
        concurrency_policy: ConcurrencyPolicy,
        /// Successful runs kept.
        successful_jobs_history_limit: u32,
        /// Failed runs kept.
        failed_jobs_history_limit: u32,
        /// Start deadline.
        starting_deadline_seconds: Option<i64>,
    },
}

impl ScrapeJobSpec {
    /// Parses the spec.
    ///
    /// # Errors
    /// Every problem CEL could not catch, each with its field path.
    pub fn validate(&self) -> Result<ValidatedScrapeJob, InvalidSpec> {
        let mut problems = Problems::default();
        topic::check_declared(&self.output.topic, "spec.output.topic", &mut problems);
        let source = source(
            &self.source,
            self.extract.items.json.is_some(),
            &mut problems,
        );
        let extract = extract(&self.extract, &mut problems);
        let follow = self
            .follow
            .as_ref()
            .map(|follow| self::follow(follow, self.extract.items.json.is_some(), &mut problems));
        let politeness = politeness(self.politeness.as_ref(), &mut problems);
        let trigger = trigger(self, &mut problems);
        let run_timeout = duration(
            &mut problems,
            "spec.runTimeout",
            self.run_timeout.as_ref(),
            (StdDuration::from_secs(60), StdDuration::from_secs(86_400)),
            DEFAULT_RUN_TIMEOUT,
        );
        let (next_page, detail_pages) = follow.unwrap_or((None, None));
        problems.finish(|| {
            Some(ValidatedScrapeJob {
                source: source?,
                extract: extract?,
                next_page,
                detail_pages,
                politeness: politeness?,
                allow_private_addresses: self
                    .network
                    .as_ref()
                    .and_then(|network| network.allow_private_addresses)
                    .unwrap_or(false),
                trigger: trigger?,
                run_timeout: run_timeout?,
                output: self.output.topic.clone(),
                deletion_policy: self.deletion_policy.unwrap_or_default(),
            })
        })
    }
}

fn duration(
    problems: &mut Problems,
    path: &str,
    value: Option<&Duration>,
    (min, max): (StdDuration, StdDuration),
    default: StdDuration,
) -> Option<StdDuration> {
    match value {
        Some(value) => problems.check(path, value.parse_within(min, max)),
        None => Some(default),
    }
}

fn positive(value: i32) -> NonZeroU32 {
    // The schema bounds these fields to >= 1; the fallback only guards a CRD installed
    // without them.
    NonZeroU32::new(value.unsigned_abs()).unwrap_or(NonZeroU32::MIN)
}

fn source(source: &Source, json_items: bool, problems: &mut Problems) -> Option<ValidatedSource> {
    match (&source.browser, &source.http) {
        (Some(browser), None) => self::browser(browser, problems).map(ValidatedSource::Browser),
        (None, Some(http)) => self::http(http, json_items, problems).map(ValidatedSource::Http),
        _ => {
            problems.push("spec.source", "exactly one of browser or http must be set");
            None
        }
    }
}

fn browser(browser: &BrowserSource, problems: &mut Problems) -> Option<ValidatedBrowser> {
    let allowed_hosts: Vec<String> = match &browser.allowed_hosts {
        Some(hosts) => hosts.iter().map(|host| host.as_str().to_owned()).collect(),
        None => browser
            .start_urls
            .iter()
            .filter_map(|url| host_of(url.as_str()))
            .map(str::to_owned)
            .collect(),
    };
    for (index, url) in browser.start_urls.iter().enumerate() {
        if let Some(host) = host_of(url.as_str())
            && !allowed_hosts
                .iter()
                .any(|pattern| host_matches(pattern, host))
        {
            problems.push(
                format_args!("spec.source.browser.startUrls[{index}]"),
                format_args!("host {host} is not in allowedHosts, so the page could not load"),
            );
        }
    }
    let wait = browser.wait_for.as_ref();
    let wait_selector = problems.check_opt(
        "spec.source.browser.waitFor.selector",
        wait.and_then(|wait| wait.selector.as_ref()),
        |selector| selector.parse(),
    );
    let wait_timeout = duration(
        problems,
        "spec.source.browser.waitFor.timeout",
        wait.and_then(|wait| wait.timeout.as_ref()),
        (StdDuration::from_secs(1), StdDuration::from_secs(300)),
        DEFAULT_WAIT_TIMEOUT,
    );
    let mut capture_responses = Vec::new();
    for capture in browser.capture_responses.iter().flatten() {
        let path = format!(
            "spec.source.browser.captureResponses[{}].urlPattern",
            capture.name
        );
        if let Some(pattern) = problems.check(path, capture.url_pattern.parse()) {
            capture_responses.push((capture.name.clone(), pattern));
        }
    }
    Some(ValidatedBrowser {
        start_urls: browser
            .start_urls
            .iter()
            .map(|url| url.as_str().to_owned())
            .collect(),
        allowed_hosts,
        wait_selector,
        wait_network_idle: wait.and_then(|wait| wait.network_idle).unwrap_or(false),
        wait_timeout: wait_timeout?,
        block_resource_types: browser
            .block_resource_types
            .clone()
            .unwrap_or_else(|| DEFAULT_BLOCKED.to_vec()),
        viewport: browser.viewport.map_or(DEFAULT_VIEWPORT, |viewport| {
            (
                viewport.width.unsigned_abs(),
                viewport.height.unsigned_abs(),
            )
        }),
        capture_responses,
    })
}

/// The host of an absolute URL (the schema guarantees `scheme://host...`).
fn host_of(url: &str) -> Option<&str> {
    let after_scheme = url.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    Some(authority.split(':').next().unwrap_or(authority))
}

/// Whether `host` matches a pattern of `allowedHosts` (`*.example.com` matches subdomains).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == pattern,
    }
}

fn http(http: &HttpSource, json_items: bool, problems: &mut Problems) -> Option<ValidatedHttp> {
    let url = problems.check("spec.source.http.url", Template::parse(http.url.as_str()));
    let body = problems.check_opt("spec.source.http.body", http.body.as_ref(), |body| {
        Template::parse(body)
    });
    let pagination = http
        .pagination
        .as_ref()
        .and_then(|pagination| self::pagination(pagination, problems));
    let body_ok = http.body.is_none() || body.is_some();
    if let Some(url) = &url
        && body_ok
    {
        let mut used = url.placeholders();
        used.extend(body.iter().flat_map(Template::placeholders));
        let offered = pagination
            .as_ref()
            .map_or(&[][..], |pagination| pagination.mode.placeholders());
        for placeholder in &used {
            if !offered.contains(placeholder) {
                problems.push(
                    "spec.source.http",
                    format_args!(
                        "{{{{{}}}}} is used but no pagination mode fills it in",
                        placeholder.name()
                    ),
                );
            }
        }
        if let Some(first) = offered.first()
            && !used.contains(first)
        {
            problems.push(
                "spec.source.http.pagination",
                format_args!(
                    "url or body must use {{{{{}}}}}, or every request would fetch the same page",
                    first.name()
                ),
            );
        }
    }
    if pagination.as_ref().is_some_and(|p| {
        matches!(
            p.mode,
            PaginationMode::Cursor(_) | PaginationMode::NextLink(_)
        )
    }) && !json_items
    {
        problems.push(
            "spec.source.http.pagination",
            "cursor and nextLink read JSON responses: use extract.items.json",
        );
    }
    Some(ValidatedHttp {
        method: http.method.unwrap_or(HttpMethod::Get),
        url: url?,
        body,
        headers: http.headers.clone().unwrap_or_default(),
        pagination,
    })
}

fn pagination(pagination: &Pagination, problems: &mut Problems) -> Option<ValidatedPagination> {
    let base = "spec.source.http.pagination";
    let mode = match (
        &pagination.offset_limit,
        &pagination.page_number,
        &pagination.cursor,
        &pagination.next_link,
    ) {
        (Some(offset), None, None, None) => PaginationMode::OffsetLimit {
            limit: positive(offset.limit),
            start: offset.start.unwrap_or(0).unsigned_abs(),
            total_path: problems.check_opt(
                format!("{base}.offsetLimit.totalPath"),
                offset.total_path.as_ref(),
                |p| p.parse(),
            ),
        },
        (None, Some(page), None, None) => PaginationMode::PageNumber {
            start: page.start.unwrap_or(1).unsigned_abs(),
        },
        (None, None, Some(cursor), None) => PaginationMode::Cursor(
            problems.check(format!("{base}.cursor.path"), cursor.path.parse())?,
        ),
        (None, None, None, Some(next)) => PaginationMode::NextLink(
            problems.check(format!("{base}.nextLink.path"), next.path.parse())?,
        ),
        _ => {
            problems.push(
                base,
                "exactly one of offsetLimit, pageNumber, cursor or nextLink must be set",
            );
            return None;
        }
    };
    Some(ValidatedPagination {
        mode,
        max_pages: positive(pagination.max_pages),
    })
}

fn extract(extract: &Extract, problems: &mut Problems) -> Option<ValidatedExtract> {
    let items = match (&extract.items.css, &extract.items.json) {
        (Some(css), None) => problems
            .check("spec.extract.items.css", css.parse())
            .map(ValidatedItems::Css),
        (None, Some(json)) => {
            let from = document(json.from.as_ref(), "spec.extract.items.json.from", problems);
            let path = problems.check("spec.extract.items.json.path", json.path.parse());
            from.zip(path)
                .map(|(from, path)| ValidatedItems::Json { from, path })
        }
        _ => {
            problems.push(
                "spec.extract.items",
                "exactly one of css or json must be set",
            );
            None
        }
    };
    let fields = fields(&extract.fields, "spec.extract.fields", problems);
    if !extract.fields.iter().any(|field| field.name == extract.key) {
        problems.push(
            "spec.extract.key",
            format_args!("{:?} is not one of extract.fields", extract.key),
        );
    }
    Some(ValidatedExtract {
        items: items?,
        fields,
        key: extract.key.clone(),
    })
}

fn document(
    document: Option<&JsonDocument>,
    path: &str,
    problems: &mut Problems,
) -> Option<DocumentSource> {
    let Some(document) = document else {
        return Some(DocumentSource::Body);
    };
    match (&document.script, &document.expression, &document.response) {
        (Some(script), None, None) => problems
            .check(format!("{path}.script"), script.parse())
            .map(DocumentSource::Script),
        (None, Some(expression), None) => Some(DocumentSource::Expression(expression.clone())),
        (None, None, Some(response)) => Some(DocumentSource::Response(response.clone())),
        _ => {
            problems.push(
                path,
                "exactly one of script, expression or response must be set",
            );
            None
        }
    }
}

fn fields(fields: &[Field], base: &str, problems: &mut Problems) -> Vec<ValidatedField> {
    fields
        .iter()
        .filter_map(|field| {
            let path = format!("{base}[{}]", field.name);
            let value = if let Some(json_path) = &field.json_path {
                problems
                    .check(format!("{path}.jsonPath"), json_path.parse())
                    .map(FieldValue::Json)
            } else {
                let css = problems
                    .check_opt(format!("{path}.css"), field.css.as_ref(), |css| css.parse());
                let css_ok = field.css.is_none() || css.is_some();
                css_ok.then(|| FieldValue::Dom {
                    css,
                    attribute: field.attribute.clone(),
                })
            };
            let regex =
                problems.check_opt(format!("{path}.regex"), field.regex.as_ref(), |regex| {
                    regex.parse()
                });
            let regex_ok = field.regex.is_none() || regex.is_some();
            Some(ValidatedField {
                name: field.name.clone(),
                value: value.filter(|_| regex_ok)?,
                regex,
                required: field.required.unwrap_or(false),
            })
        })
        .collect()
}

fn css_link(link: &Link, path: &str, problems: &mut Problems) -> Option<ValidatedLink> {
    let (Some(css), None) = (&link.css, &link.json_path) else {
        problems.push(path, "the link takes css here, and no jsonPath");
        return None;
    };
    Some(ValidatedLink {
        css: problems.check(format!("{path}.css"), css.parse())?,
        attribute: link.attribute.clone().unwrap_or_else(|| "href".to_owned()),
    })
}

/// The detail link, of the kind the items are: `css` for CSS items, `jsonPath` for JSON items.
fn detail_link(
    link: &Link,
    json_items: bool,
    path: &str,
    problems: &mut Problems,
) -> Option<PageLink> {
    match (&link.json_path, json_items) {
        (Some(json_path), true) => json_link(link, json_path, path, problems),
        (None, false) => css_link(link, path, problems).map(PageLink::Css),
        _ => {
            problems.push(
                path,
                "the link takes css for extract.items.css and jsonPath (without css or attribute) for extract.items.json",
            );
            None
        }
    }
}

/// The next-page link: `css` in the DOM, or with JSON items `jsonPath` in their document.
fn next_link(
    link: &Link,
    json_items: bool,
    path: &str,
    problems: &mut Problems,
) -> Option<PageLink> {
    match &link.json_path {
        Some(json_path) if json_items => json_link(link, json_path, path, problems),
        Some(_) => {
            problems.push(
                path,
                "the link takes jsonPath only for extract.items.json (it reads their document)",
            );
            None
        }
        None => css_link(link, path, problems).map(PageLink::Css),
    }
}

fn json_link(
    link: &Link,
    json_path: &JsonPath,
    path: &str,
    problems: &mut Problems,
) -> Option<PageLink> {
    if link.css.is_some() || link.attribute.is_some() {
        problems.push(path, "a jsonPath link takes no css or attribute");
        return None;
    }
    problems
        .check(format!("{path}.jsonPath"), json_path.parse())
        .map(PageLink::Json)
}

fn follow(
    follow: &Follow,
    json_items: bool,
    problems: &mut Problems,
) -> (Option<ValidatedNextPage>, Option<ValidatedDetailPages>) {
    let next_page = follow.next_page.as_ref().and_then(|next| {
        next_link(
            &next.link,
            json_items,
            "spec.follow.nextPage.link",
            problems,
        )
        .map(|link| ValidatedNextPage {
            link,
            max_pages: positive(next.max_pages),
        })
    });
    let detail_pages = follow.detail_pages.as_ref().and_then(|detail| {
        let link = detail_link(
            &detail.link,
            json_items,
            "spec.follow.detailPages.link",
            problems,
        );
        let from = match &detail.from {
            Some(from) => Some(document(
                Some(from),
                "spec.follow.detailPages.from",
                problems,
            )?),
            None => None,
        };
        let fields = self::fields(&detail.fields, "spec.follow.detailPages.fields", problems);
        Some(ValidatedDetailPages {
            link: link?,
            from,
            fields,
            max_pages: positive(detail.max_pages),
        })
    });
    (next_page, detail_pages)
}

fn politeness(
    politeness: Option<&Politeness>,
    problems: &mut Problems,
) -> Option<ValidatedPoliteness> {
    let backoff = politeness.and_then(|p| p.backoff.as_ref());
    let initial = duration(
        problems,
        "spec.politeness.backoff.initial",
        backoff.and_then(|b| b.initial.as_ref()),
        (StdDuration::from_millis(100), StdDuration::from_secs(60)),
        DEFAULT_BACKOFF_INITIAL,
    );
    let max = duration(
        problems,
        "spec.politeness.backoff.max",
        backoff.and_then(|b| b.max.as_ref()),
        (StdDuration::from_secs(1), StdDuration::from_secs(600)),
        DEFAULT_BACKOFF_MAX,
    );
    if let (Some(initial), Some(max)) = (initial, max)
        && initial > max
    {
        problems.push("spec.politeness.backoff", "initial must not exceed max");
    }
    let timeout = duration(
        problems,
        "spec.politeness.timeout",
        politeness.and_then(|p| p.timeout.as_ref()),
        (StdDuration::from_secs(1), StdDuration::from_secs(300)),
        DEFAULT_REQUEST_TIMEOUT,
    );
    Some(ValidatedPoliteness {
        concurrency: positive(politeness.and_then(|p| p.concurrency).unwrap_or(2)),
        requests_per_second_per_host: politeness
            .and_then(|p| p.requests_per_second_per_host)
            .unwrap_or(1.0),
        respect_robots_txt: politeness
            .and_then(|p| p.respect_robots_txt)
            .unwrap_or(true),
        retries: politeness
            .and_then(|p| p.retries)
            .unwrap_or(3)
            .unsigned_abs(),
        backoff_initial: initial?,
        backoff_max: max?,
        timeout: timeout?,
        user_agent: politeness.and_then(|p| p.user_agent.clone()),
    })
}

fn trigger(spec: &ScrapeJobSpec, problems: &mut Problems) -> Option<Trigger> {
    let suspend = spec.suspend.unwrap_or(false);
    let Some(schedule) = &spec.schedule else {
        return Some(Trigger::Once { suspend });
    };
    let parsed = problems.check("spec.schedule", schedule.parse())?;
    Some(Trigger::Scheduled {
        schedule: schedule.clone(),
        parsed,
        time_zone: spec.time_zone.clone(),
        suspend,
        concurrency_policy: spec.concurrency_policy.unwrap_or_default(),
        successful_jobs_history_limit: spec
            .successful_jobs_history_limit
            .unwrap_or(3)
            .unsigned_abs(),
        failed_jobs_history_limit: spec.failed_jobs_history_limit.unwrap_or(1).unsigned_abs(),
        starting_deadline_seconds: spec.starting_deadline_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(items: &str, follow: &str) -> ScrapeJobSpec {
        serde_yaml::from_str(&format!(
            "source: {{http: {{url: 'https://example.com/api'}}}}
output: {{topic: {{name: t}}}}
extract: {{items: {items}, key: id, fields: [{{name: id, jsonPath: $.id}}]}}
follow: {follow}"
        ))
        .unwrap()
    }

    fn detail(items: &str, link: &str) -> ScrapeJobSpec {
        spec(
            items,
            &format!(
                "{{detailPages: {{link: {link}, fields: [{{name: agent, css: .agent}}], maxPages: 5}}}}"
            ),
        )
    }

    fn next(items: &str, link: &str) -> ScrapeJobSpec {
        spec(
            items,
            &format!("{{nextPage: {{link: {link}, maxPages: 5}}}}"),
        )
    }

    #[test]
    fn json_items_take_a_json_path_detail_link() {
        let valid = detail("{json: {path: '$[*]'}}", "{jsonPath: $.href}")
            .validate()
            .unwrap();
        let detail = valid.detail_pages.unwrap();
        let PageLink::Json(path) = &detail.link else {
            panic!("expected a JSONPath link, got {:?}", detail.link)
        };
        let item = serde_json::json!({"href": "/homes/1"});
        assert_eq!(path.query(&item).exactly_one().unwrap(), "/homes/1");
    }

    #[test]
    fn a_detail_link_must_match_the_kind_of_items() {
        for (items, link) in [
            ("{json: {path: '$[*]'}}", "{css: a}"),
            ("{css: li}", "{jsonPath: $.href}"),
            ("{json: {path: '$[*]'}}", "{jsonPath: $.href, css: a}"),
            (
                "{json: {path: '$[*]'}}",
                "{jsonPath: $.href, attribute: href}",
            ),
            ("{json: {path: '$[*]'}}", "{}"),
        ] {
            let error = detail(items, link).validate().unwrap_err().to_string();
            assert!(
                error.contains("spec.follow.detailPages.link"),
                "{items} {link}: {error}"
            );
        }
    }

    #[test]
    fn a_next_page_link_takes_json_path_with_json_items_and_css_with_any() {
        let json_items = "{json: {path: '$.homes[*]'}}";
        let valid = next(json_items, "{jsonPath: $.next}").validate().unwrap();
        assert!(matches!(valid.next_page.unwrap().link, PageLink::Json(_)));
        let valid = next(json_items, "{css: 'a[rel=next]'}").validate().unwrap();
        assert!(matches!(valid.next_page.unwrap().link, PageLink::Css(_)));
        for (items, link) in [
            ("{css: li}", "{jsonPath: $.next}"),
            (json_items, "{jsonPath: $.next, css: a}"),
            (json_items, "{jsonPath: $.next, attribute: href}"),
            (json_items, "{}"),
        ] {
            let error = next(items, link).validate().unwrap_err().to_string();
            assert!(
                error.contains("spec.follow.nextPage.link"),
                "{items} {link}: {error}"
            );
        }
    }
}
