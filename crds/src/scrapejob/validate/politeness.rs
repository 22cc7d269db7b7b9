//! The politeness checks: backoff and timeout bounds, and the defaults of every limit.

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use super::{duration, positive};
use crate::scrapejob::crawl::Politeness;
use crate::validation::Problems;

const DEFAULT_REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(30);
const DEFAULT_BACKOFF_INITIAL: StdDuration = StdDuration::from_secs(1);
const DEFAULT_BACKOFF_MAX: StdDuration = StdDuration::from_secs(60);

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

pub(super) fn validate(
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
