//! The HTTP fetcher (reqwest): the SSRF guard on every address and redirect,
//! robots.txt, the per-host rate, timeouts and retries. The browser pool uses its
//! checks ([`HttpClient::admit`], [`HttpClient::pace`]) for the pages it navigates to.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use url::Url;

use super::guard::{Guard, GuardedResolver, refusal_in};
use super::job::Job;
use super::metrics::Metrics;
use super::page::{FetchError, FetchedPage, Fetcher, PageRequest};
use super::politeness::{Failure, HostRateLimiter, RetryPolicy, parse_retry_after};
use super::robots::Robots;

/// Redirects followed per request, as browsers roughly do.
const MAX_REDIRECTS: usize = 10;
/// Connecting takes at most this long even when the job allows slow pages: a host
/// that does not accept a connection in 10s is down, and the retry is better spent.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP side of a run: one connection pool, its politeness and its guard.
#[derive(Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    guard: Guard,
    robots: Option<Robots>,
    limiter: HostRateLimiter,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl HttpClient {
    /// A client with the job's user agent, timeouts, rate, retries and address policy.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(job: &Job, metrics: Arc<Metrics>) -> Result<Self, reqwest::Error> {
        let politeness = &job.spec.politeness;
        let guard = Guard::new(job.spec.allow_private_addresses);
        let client = reqwest::Client::builder()
            .user_agent(&job.user_agent)
            .timeout(politeness.timeout)
            .connect_timeout(politeness.timeout.min(MAX_CONNECT_TIMEOUT))
            .dns_resolver(GuardedResolver::shared(guard))
            // A proxy would resolve and connect on our behalf, out of the guard's sight.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if let Err(refused) = guard.check_url_literal(attempt.url()) {
                    attempt.error(refused)
                } else {
                    attempt.follow()
                }
            }))
            .build()?;
        Ok(Self {
            client,
            guard,
            robots: politeness
                .respect_robots_txt
                .then(|| Robots::new(&job.user_agent)),
            limiter: HostRateLimiter::new(politeness.requests_per_second_per_host),
            retry: job.retry,
            metrics,
        })
    }

    /// Checks that `url` may be fetched at all: an allowed address (literal addresses
    /// here; names when they resolve) and not disallowed by robots.txt.
    ///
    /// # Errors
    /// [`FetchError::Refused`] or [`FetchError::Disallowed`].
    pub async fn admit(&self, url: &Url) -> Result<(), FetchError> {
        self.guard
            .check_url_literal(url)
            .map_err(|source| FetchError::Refused {
                url: url.clone(),
                source,
            })?;
        let Some(robots) = &self.robots else {
            return Ok(());
        };
        match robots.allowed(&self.client, url).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(FetchError::Disallowed { url: url.clone() }),
            Err(source) => Err(FetchError::Refused {
                url: url.clone(),
                source,
            }),
        }
    }

    /// Waits for the next request slot of `url`'s host.
    pub async fn pace(&self, url: &Url) {
        self.limiter.wait(url.host_str().unwrap_or_default()).await;
    }

    /// The address guard.
    pub fn guard(&self) -> Guard {
        self.guard
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The run's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn attempt(&self, request: &PageRequest) -> Result<FetchedPage, Failure> {
        let url = &request.url;
        self.pace(url).await;
        let mut builder = self
            .client
            .request(request.method.clone(), url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            if !request.headers.contains_key(CONTENT_TYPE)
                && serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok()
            {
                builder =
                    builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(|error| classify(url, error))?;
        let status = response.status();
        if status.is_success() {
            let final_url = response.url().clone();
            let body = response
                .text()
                .await
                .map_err(|error| classify(url, error))?;
            return Ok(FetchedPage {
                url: Some(final_url),
                body,
                ..FetchedPage::default()
            });
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let error = FetchError::Status {
            url: url.clone(),
            status,
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(Failure::Retry(error, retry_after))
        } else {
            Err(Failure::Fatal(error))
        }
    }
}

impl Fetcher for HttpClient {
    async fn fetch(&self, request: &PageRequest) -> Result<FetchedPage, FetchError> {
        self.admit(&request.url).await?;
        let page = self
            .retry
            .run(&self.metrics, || self.attempt(request))
            .await?;
        self.metrics.page_fetched();
        Ok(page)
    }
}

/// Sorts a client error: the guard's refusal (from the resolver or the redirect
/// policy) is final, anything else in transport is worth a retry.
fn classify(url: &Url, error: reqwest::Error) -> Failure {
    if let Some(refused) = refusal_in(&error) {
        return Failure::Fatal(FetchError::Refused {
            url: url.clone(),
            source: refused.clone(),
        });
    }
    Failure::Retry(
        FetchError::Transport {
            url: url.clone(),
            source: error,
        },
        None,
    )
}
