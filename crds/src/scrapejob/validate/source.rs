//! The source checks: a browser's start URLs against its allowed hosts, its waits and
//! captured responses; an HTTP source's URL and body templates against the placeholders
//! its pagination mode fills in.

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use super::{duration, positive};
use crate::format::url::{Placeholder, Template};
use crate::scrapejob::source::{
    BrowserSource, Header, HttpMethod, HttpSource, Pagination, ResourceType, Source,
};
use crate::validation::Problems;

const DEFAULT_WAIT_TIMEOUT: StdDuration = StdDuration::from_secs(30);
const DEFAULT_VIEWPORT: (u32, u32) = (1366, 900);
const DEFAULT_BLOCKED: [ResourceType; 3] =
    [ResourceType::Image, ResourceType::Font, ResourceType::Media];

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
    pub headers: Vec<Header>,
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

pub(super) fn validate(
    source: &Source,
    json_items: bool,
    problems: &mut Problems,
) -> Option<ValidatedSource> {
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
