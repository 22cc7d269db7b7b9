//! When runs happen: one run, or a parsed cron schedule with its CronJob settings.

use crate::format::cron::{CronSchedule, Schedule, TimeZone};
use crate::scrapejob::{ConcurrencyPolicy, ScrapeJobSpec};
use crate::validation::Problems;

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

pub(super) fn validate(spec: &ScrapeJobSpec, problems: &mut Problems) -> Option<Trigger> {
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
