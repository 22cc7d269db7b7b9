//! Politeness towards a site: a request rate per host and the waits between retries
//! (exponential backoff with jitter, or the server's `Retry-After`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use homestream_crds::scrapejob::ValidatedScrapeJob;
use tokio::time::Instant;

use super::metrics::Metrics;
use super::page::FetchError;

/// Spaces the requests to each host at least `1 / requestsPerSecondPerHost` apart.
#[derive(Debug)]
pub struct HostRateLimiter {
    interval: Duration,
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl HostRateLimiter {
    /// A limiter allowing `per_second` requests per second to each host.
    pub fn new(per_second: f64) -> Self {
        // The schema bounds the rate to 0.01..=50; the clamp only guards a CRD
        // installed without the bound.
        let interval = Duration::from_secs_f64(1.0 / per_second.clamp(0.01, 1000.0));
        Self {
            interval,
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the next free slot of `host`. Slots are reserved first come, first
    /// served, so concurrent callers queue instead of bursting together.
    pub async fn wait(&self, host: &str) {
        let slot = {
            let mut next = self
                .next_slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = next
                .get(host)
                .copied()
                .filter(|slot| *slot > now)
                .unwrap_or(now);
            next.insert(host.to_owned(), slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// How often and how long to retry a failed request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First wait.
    pub initial: Duration,
    /// Longest wait, also the cap on a server's `Retry-After`.
    pub max: Duration,
}

impl RetryPolicy {
    /// The policy of a ScrapeJob.
    pub fn of(job: &ValidatedScrapeJob) -> Self {
        let politeness = &job.politeness;
        Self {
            retries: politeness.retries,
            initial: politeness.backoff_initial,
            max: politeness.backoff_max,
        }
    }

    /// The wait before retry number `retry` (0 for the first retry): the server's
    /// `Retry-After` if it sent one, else `initial * 2^retry` capped at `max`, with
    /// "equal jitter" (half fixed, half random) so that many clients do not retry in step.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max);
        }
        let exponential = self
            .initial
            .saturating_mul(2u32.saturating_pow(retry.min(20)))
            .min(self.max);
        let half = exponential / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try (network error, timeout, 429, 5xx), after the server's
    /// `Retry-After` if it sent one.
    Retry(FetchError, Option<Duration>),
    /// Not worth retrying (refused, disallowed, other 4xx).
    Fatal(FetchError),
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails fatally or the retries are used up.
    ///
    /// # Errors
    /// The last attempt's error.
    pub async fn run<T, F, Fut>(&self, metrics: &Metrics, mut attempt: F) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut retry = 0;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retry(error, _)) if retry >= self.retries => return Err(error),
                Err(Failure::Retry(error, retry_after)) => {
                    let delay = self.delay(retry, retry_after);
                    tracing::info!(%error, retry = retry + 1, delay_ms = delay.as_millis(), "Retrying.");
                    metrics.retry();
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
            }
        }
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = policy.delay(0, None);
            assert!(
                (Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first),
                "{first:?}"
            );
            let third = policy.delay(2, None);
            assert!(
                (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third),
                "{third:?}"
            );
            assert!(policy.delay(10, None) <= Duration::from_secs(1));
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn parses_retry_after_forms() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn rate_limiter_spaces_requests_per_host() {
        let limiter = HostRateLimiter::new(20.0);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.wait("a.example").await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        let other = Instant::now();
        limiter.wait("b.example").await;
        assert!(
            other.elapsed() < Duration::from_millis(40),
            "other hosts are not held back"
        );
    }
}
