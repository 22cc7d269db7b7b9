//! The scraper's view of a ScrapeJob: the spec the user wrote, checked by
//! [`ScrapeJobSpec::validate`] and parsed into typed rules (selectors, JSONPaths,
//! regexes, URL templates, durations) plus what only the pod knows: the Secret values
//! of headers (from the environment), the run name and the user agent.
//!
//! `homestream-crds` keeps the `Validated...` types of a ScrapeJob in a private module
//! (only `ValidatedScrapeJob` is exported, and its enums cannot be matched from
//! here), so the parts that are enums are parsed again from the checked spec with the
//! crds' own parsers; plain values (politeness, bounds) are taken from the validated job.

use std::num::NonZeroU32;
use std::time::Duration;

use homestream_crds::ScrapeJobSpec;
use homestream_crds::format::url::Template;
use homestream_crds::runtime::{ResourceIdentity, secret_env_var};
use homestream_crds::scrapejob::ValidatedScrapeJob;
use homestream_crds::scrapejob::crawl::Link as SpecLink;
use homestream_crds::scrapejob::extract::{Field as SpecField, JsonDocument};
use homestream_crds::scrapejob::source::{HttpMethod, ResourceType};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::politeness::RetryPolicy;

/// The user agent when the job sets none: names the project so sites can reach its operators.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "homestream/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/homestream/homestream)"
);
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_VIEWPORT: (u32, u32) = (1366, 900);
const DEFAULT_BLOCKED: [ResourceType; 3] =
    [ResourceType::Image, ResourceType::Font, ResourceType::Media];

/// A ScrapeJob that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The spec failed validation.
    #[error("invalid ScrapeJob spec: {0}")]
    Invalid(#[from] homestream_crds::InvalidSpec),
    /// A part of the spec did not parse (validation should have caught it).
    #[error("{path}: {message}")]
    Parse {
        /// Field path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A header's Secret value is not in the environment.
    #[error(
        "header {header} takes its value from Secret {secret}, but {variable} is not set in the environment"
    )]
    MissingSecret {
        /// Header name.
        header: String,
        /// `name/key` of the Secret.
        secret: String,
        /// The variable the operator sets.
        variable: String,
    },
}

/// Everything a run needs, parsed.
#[derive(Debug, Clone)]
pub struct Job {
    /// `namespace/name` of the ScrapeJob, for `_meta.job`.
    pub name: String,
    /// Name of this run, for `_meta.run`.
    pub run: String,
    /// How pages are fetched.
    pub source: Source,
    /// Items and fields of results pages.
    pub extract: ExtractRules,
    /// The next-page link and the page bound per start URL.
    pub next_page: Option<(Link, NonZeroU32)>,
    /// Detail pages.
    pub detail: Option<DetailRules>,
    /// Politeness limits.
    pub politeness: Politeness,
    /// Whether non-public addresses may be reached.
    pub allow_private_addresses: bool,
    /// Output topic.
    pub topic: String,
    /// Longest run.
    pub run_timeout: Duration,
}

/// How pages are fetched.
#[derive(Debug, Clone)]
pub enum Source {
    /// Headless Chromium.
    Browser(BrowserSettings),
    /// Plain HTTP.
    Http(HttpSettings),
}

/// A browser source, defaults filled in.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// Pages to load first.
    pub start_urls: Vec<Url>,
    /// Host patterns the page may load from (`*.` prefix for subdomains).
    pub allowed_hosts: Vec<String>,
    /// CSS selector to wait for.
    pub wait_selector: Option<String>,
    /// Whether to wait for the network to be idle.
    pub wait_network_idle: bool,
    /// Longest wait for a page.
    pub wait_timeout: Duration,
    /// Resource types not downloaded.
    pub block_resource_types: Vec<ResourceType>,
    /// Window size.
    pub viewport: (u32, u32),
    /// Responses to capture: name and URL pattern.
    pub capture_responses: Vec<(String, regex::Regex)>,
}

/// An HTTP source with its headers resolved.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Request method.
    pub method: reqwest::Method,
    /// URL template.
    pub url: Template,
    /// Body template.
    pub body: Option<Template>,
    /// Headers, Secret values filled in.
    pub headers: HeaderMap,
    /// Paging.
    pub pagination: Option<Pagination>,
}

/// Paging through an API.
#[derive(Debug, Clone)]
pub struct Pagination {
    /// Mode.
    pub mode: PaginationMode,
    /// Page bound.
    pub max_pages: NonZeroU32,
}

/// Paging modes.
#[derive(Debug, Clone)]
pub enum PaginationMode {
    /// `{{offset}}` steps by `limit` from `start`; stops at the total or a short page.
    OffsetLimit {
        /// Page size.
        limit: u32,
        /// First offset.
        start: u32,
        /// Where the total is.
        total_path: Option<serde_json_path::JsonPath>,
    },
    /// `{{page}}` from `start`; stops at an empty page.
    PageNumber {
        /// First page.
        start: u32,
    },
    /// `{{cursor}}` read from each response.
    Cursor(serde_json_path::JsonPath),
    /// The next URL read from each response.
    NextLink(serde_json_path::JsonPath),
}

/// Items and fields.
#[derive(Debug, Clone)]
pub struct ExtractRules {
    /// Where the items are.
    pub items: Items,
    /// Their fields.
    pub fields: Vec<FieldRule>,
    /// The key field.
    pub key: String,
}

/// Where the items are.
#[derive(Debug, Clone)]
pub enum Items {
    /// Elements matching a selector.
    Css(scraper::Selector),
    /// Values of a JSONPath in a document.
    Json {
        /// The document.
        from: Document,
        /// The path.
        path: serde_json_path::JsonPath,
    },
}

/// A JSON document of a page.
#[derive(Debug, Clone)]
pub enum Document {
    /// The response body.
    Body,
    /// The text of the first matching script.
    Script(scraper::Selector),
    /// A JavaScript expression's value (browser).
    Expression(String),
    /// A captured response (browser), by capture name.
    Response(String),
}

/// One field.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// Record field name.
    pub name: String,
    /// Where the value is.
    pub value: FieldValue,
    /// Narrowing regex.
    pub regex: Option<regex::Regex>,
    /// Whether an item without it is skipped.
    pub required: bool,
}

/// Where a field's value is.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// In the DOM: an element relative to the item (`None`: the item) and an attribute (`None`: its text).
    Dom(Option<scraper::Selector>, Option<String>),
    /// In the item's JSON.
    Json(serde_json_path::JsonPath),
}

/// A link element and the attribute holding the URL.
#[derive(Debug, Clone)]
pub struct Link {
    /// The element.
    pub css: scraper::Selector,
    /// The attribute.
    pub attribute: String,
}

/// Detail pages.
#[derive(Debug, Clone)]
pub struct DetailRules {
    /// Link relative to the item.
    pub link: Link,
    /// The document JSON fields read, if any.
    pub from: Option<Document>,
    /// Fields read there.
    pub fields: Vec<FieldRule>,
    /// Bound per run.
    pub max_pages: NonZeroU32,
}

/// Politeness, defaults filled in.
#[derive(Debug, Clone)]
pub struct Politeness {
    /// Pages in flight.
    pub concurrency: NonZeroU32,
    /// Requests per second per host.
    pub requests_per_second_per_host: f64,
    /// Whether robots.txt is obeyed.
    pub respect_robots_txt: bool,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Timeout of a request or page load.
    pub timeout: Duration,
    /// User agent.
    pub user_agent: String,
}

impl Job {
    /// Validates and parses `spec`, reading header Secrets with `env`.
    ///
    /// # Errors
    /// When the spec is invalid or a Secret value is not in the environment.
    pub fn new(
        spec: &ScrapeJobSpec,
        resource: &ResourceIdentity,
        run: String,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, JobError> {
        let validated: ValidatedScrapeJob = spec.validate()?;
        let source = match (&spec.source.browser, &spec.source.http) {
            (Some(browser), _) => Source::Browser(browser_settings(browser)?),
            (None, Some(http)) => Source::Http(http_settings(http, &env)?),
            (None, None) => {
                return Err(parse_error(
                    "spec.source",
                    "exactly one of browser or http must be set",
                ));
            }
        };
        let items = match (&spec.extract.items.css, &spec.extract.items.json) {
            (Some(css), _) => Items::Css(parse("spec.extract.items.css", css.parse())?),
            (None, Some(json)) => Items::Json {
                from: document(json.from.as_ref(), "spec.extract.items.json.from")?,
                path: parse("spec.extract.items.json.path", json.path.parse())?,
            },
            (None, None) => {
                return Err(parse_error(
                    "spec.extract.items",
                    "exactly one of css or json must be set",
                ));
            }
        };
        let detail = match spec
            .follow
            .as_ref()
            .and_then(|follow| follow.detail_pages.as_ref())
        {
            Some(detail) => Some(DetailRules {
                link: link(&detail.link, "spec.follow.detailPages.link")?,
                from: detail
                    .from
                    .as_ref()
                    .map(|from| document(Some(from), "spec.follow.detailPages.from"))
                    .transpose()?,
                fields: fields(&detail.fields, "spec.follow.detailPages.fields")?,
                max_pages: validated
                    .detail_pages
                    .as_ref()
                    .map_or(NonZeroU32::MIN, |detail| detail.max_pages),
            }),
            None => None,
        };
        let next_page = match spec
            .follow
            .as_ref()
            .and_then(|follow| follow.next_page.as_ref())
        {
            Some(next) => Some((
                link(&next.link, "spec.follow.nextPage.link")?,
                validated
                    .next_page
                    .as_ref()
                    .map_or(NonZeroU32::MIN, |next| next.max_pages),
            )),
            None => None,
        };
        let politeness = &validated.politeness;
        Ok(Self {
            name: format!("{}/{}", resource.namespace, resource.name),
            run,
            source,
            extract: ExtractRules {
                items,
                fields: fields(&spec.extract.fields, "spec.extract.fields")?,
                key: validated.extract.key.clone(),
            },
            next_page,
            detail,
            politeness: Politeness {
                concurrency: politeness.concurrency,
                requests_per_second_per_host: politeness.requests_per_second_per_host,
                respect_robots_txt: politeness.respect_robots_txt,
                retry: RetryPolicy::of(&validated),
                timeout: politeness.timeout,
                user_agent: politeness
                    .user_agent
                    .clone()
                    .unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned()),
            },
            allow_private_addresses: validated.allow_private_addresses,
            topic: validated.output.name.as_str().to_owned(),
            run_timeout: validated.run_timeout,
        })
    }
}

fn parse_error(path: impl Into<String>, message: impl ToString) -> JobError {
    JobError::Parse {
        path: path.into(),
        message: message.to_string(),
    }
}

fn parse<T, E: ToString>(path: &str, result: Result<T, E>) -> Result<T, JobError> {
    result.map_err(|error| parse_error(path, error))
}

fn browser_settings(
    browser: &homestream_crds::scrapejob::source::BrowserSource,
) -> Result<BrowserSettings, JobError> {
    let start_urls = browser
        .start_urls
        .iter()
        .map(|url| parse("spec.source.browser.startUrls", Url::parse(url.as_str())))
        .collect::<Result<Vec<_>, _>>()?;
    let allowed_hosts = match &browser.allowed_hosts {
        Some(hosts) => hosts.iter().map(|host| host.as_str().to_owned()).collect(),
        None => start_urls
            .iter()
            .filter_map(Url::host_str)
            .map(str::to_owned)
            .collect(),
    };
    let wait = browser.wait_for.as_ref();
    let wait_timeout = match wait.and_then(|wait| wait.timeout.as_ref()) {
        Some(timeout) => parse("spec.source.browser.waitFor.timeout", timeout.parse())?,
        None => DEFAULT_WAIT_TIMEOUT,
    };
    let capture_responses = browser
        .capture_responses
        .iter()
        .flatten()
        .map(|capture| {
            Ok((
                capture.name.clone(),
                parse(
                    "spec.source.browser.captureResponses",
                    capture.url_pattern.parse(),
                )?,
            ))
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    Ok(BrowserSettings {
        start_urls,
        allowed_hosts,
        wait_selector: wait
            .and_then(|wait| wait.selector.as_ref())
            .map(|selector| selector.as_str().to_owned()),
        wait_network_idle: wait.and_then(|wait| wait.network_idle).unwrap_or(false),
        wait_timeout,
        block_resource_types: browser
            .block_resource_types
            .clone()
            .unwrap_or_else(|| DEFAULT_BLOCKED.to_vec()),
        viewport: browser.viewport.map_or(DEFAULT_VIEWPORT, |v| {
            (v.width.unsigned_abs(), v.height.unsigned_abs())
        }),
        capture_responses,
    })
}

fn http_settings(
    http: &homestream_crds::scrapejob::source::HttpSource,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HttpSettings, JobError> {
    let mut headers = HeaderMap::new();
    for header in http.headers.iter().flatten() {
        let path = format!("spec.source.http.headers[{}]", header.name.as_str());
        let value = match (&header.value, &header.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => {
                let secret = &from.secret_key_ref;
                let variable = secret_env_var(secret);
                env(&variable).ok_or_else(|| JobError::MissingSecret {
                    header: header.name.as_str().to_owned(),
                    secret: format!("{}/{}", secret.name, secret.key),
                    variable,
                })?
            }
            (None, None) => return Err(parse_error(path, "a header takes value or valueFrom")),
        };
        let name = parse(
            &path,
            HeaderName::from_bytes(header.name.as_str().as_bytes()),
        )?;
        // Never echo a value into an error: it may be a credential.
        let value = HeaderValue::from_str(&value)
            .map_err(|_| parse_error(&path, "the value is not a valid header value"))?;
        headers.append(name, value);
    }
    let pagination = match &http.pagination {
        Some(pagination) => {
            let base = "spec.source.http.pagination";
            let mode = if let Some(offset) = &pagination.offset_limit {
                PaginationMode::OffsetLimit {
                    limit: offset.limit.unsigned_abs().max(1),
                    start: offset.start.unwrap_or(0).unsigned_abs(),
                    total_path: offset
                        .total_path
                        .as_ref()
                        .map(|p| parse(base, p.parse()))
                        .transpose()?,
                }
            } else if let Some(page) = &pagination.page_number {
                PaginationMode::PageNumber {
                    start: page.start.unwrap_or(1).unsigned_abs(),
                }
            } else if let Some(cursor) = &pagination.cursor {
                PaginationMode::Cursor(parse(base, cursor.path.parse())?)
            } else if let Some(next) = &pagination.next_link {
                PaginationMode::NextLink(parse(base, next.path.parse())?)
            } else {
                return Err(parse_error(base, "no pagination mode is set"));
            };
            Some(Pagination {
                mode,
                max_pages: NonZeroU32::new(pagination.max_pages.unsigned_abs())
                    .unwrap_or(NonZeroU32::MIN),
            })
        }
        None => None,
    };
    Ok(HttpSettings {
        method: match http.method.unwrap_or(HttpMethod::Get) {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        },
        url: parse("spec.source.http.url", Template::parse(http.url.as_str()))?,
        body: http
            .body
            .as_deref()
            .map(|body| parse("spec.source.http.body", Template::parse(body)))
            .transpose()?,
        headers,
        pagination,
    })
}

fn document(from: Option<&JsonDocument>, path: &str) -> Result<Document, JobError> {
    let Some(from) = from else {
        return Ok(Document::Body);
    };
    match (&from.script, &from.expression, &from.response) {
        (Some(script), None, None) => Ok(Document::Script(parse(path, script.parse())?)),
        (None, Some(expression), None) => Ok(Document::Expression(expression.clone())),
        (None, None, Some(response)) => Ok(Document::Response(response.clone())),
        _ => Err(parse_error(
            path,
            "exactly one of script, expression or response must be set",
        )),
    }
}

fn fields(fields: &[SpecField], base: &str) -> Result<Vec<FieldRule>, JobError> {
    fields
        .iter()
        .map(|field| {
            let path = format!("{base}[{}]", field.name);
            let value = match &field.json_path {
                Some(json_path) => FieldValue::Json(parse(&path, json_path.parse())?),
                None => FieldValue::Dom(
                    field
                        .css
                        .as_ref()
                        .map(|css| parse(&path, css.parse()))
                        .transpose()?,
                    field.attribute.clone(),
                ),
            };
            Ok(FieldRule {
                name: field.name.clone(),
                value,
                regex: field
                    .regex
                    .as_ref()
                    .map(|regex| parse(&path, regex.parse()))
                    .transpose()?,
                required: field.required.unwrap_or(false),
            })
        })
        .collect()
}

fn link(link: &SpecLink, path: &str) -> Result<Link, JobError> {
    Ok(Link {
        css: parse(path, link.css.parse())?,
        attribute: link.attribute.clone().unwrap_or_else(|| "href".to_owned()),
    })
}
