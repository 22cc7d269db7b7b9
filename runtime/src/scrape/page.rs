//! What the fetchers hand to extraction: a fetched page with the JSON documents that
//! only the fetcher can get (values of JavaScript expressions, captured responses),
//! and the errors of fetching one.

use std::collections::HashMap;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::guard::Refused;

/// One request for a page.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// `GET` or `POST` (a browser always navigates with `GET`).
    pub method: Method,
    /// What to fetch.
    pub url: Url,
    /// Extra request headers (HTTP sources).
    pub headers: HeaderMap,
    /// Request body (`POST`).
    pub body: Option<String>,
}

impl PageRequest {
    /// A plain `GET`.
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }
}

/// A fetched page.
#[derive(Debug, Clone, Default)]
pub struct FetchedPage {
    /// Its URL after redirects.
    pub url: Option<Url>,
    /// The response body, or in a browser the DOM serialised after the wait.
    pub body: String,
    /// Values of the JavaScript expressions the job reads (browser), by expression.
    pub expressions: HashMap<String, Value>,
    /// Bodies of captured network responses (browser), by capture name.
    pub responses: HashMap<String, String>,
}

/// Why a page could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The SSRF guard refused the address; never retried.
    #[error("refused {url}: {source}")]
    Refused {
        /// The URL.
        url: Url,
        /// Why.
        source: Refused,
    },
    /// robots.txt disallows the URL for our user agent; never retried.
    #[error("robots.txt of {url} disallows it for this user agent")]
    Disallowed {
        /// The URL.
        url: Url,
    },
    /// The server answered with an error status (after retries for 429 and 5xx).
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: Url,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The request failed in transport (after retries).
    #[error("requesting {url}: {source}")]
    Transport {
        /// The URL.
        url: Url,
        /// The client error.
        source: reqwest::Error,
    },
    /// The browser failed to load or evaluate the page (after retries).
    #[error("loading {url} in the browser: {reason}")]
    Browser {
        /// The URL.
        url: Url,
        /// What went wrong.
        reason: String,
    },
    /// The run is shutting down.
    #[error("stopped before fetching {url}")]
    Stopped {
        /// The URL.
        url: Url,
    },
}

impl FetchError {
    /// A label for the error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "refused",
            Self::Disallowed { .. } => "robots",
            Self::Status { .. } => "status",
            Self::Transport { .. } => "transport",
            Self::Browser { .. } => "browser",
            Self::Stopped { .. } => "stopped",
        }
    }
}

/// Fetches pages: the HTTP client or the browser pool.
pub trait Fetcher: Send + Sync {
    /// Fetches one page, with the job's politeness and retries.
    fn fetch(
        &self,
        request: &PageRequest,
    ) -> impl Future<Output = Result<FetchedPage, FetchError>> + Send;
}
