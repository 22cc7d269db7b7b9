//! When a scheduled ScrapeJob runs next, as the Kubernetes CronJob controller (robfig/cron
//! v3) decides it: from the schedule the crds already parsed and validated (one parser of
//! the dialect, so what is accepted and what it means cannot drift apart) and the IANA
//! time zone of `timeZone`, with daylight-saving transitions from chrono-tz's bundled
//! database (the operator image needs no `/usr/share/zoneinfo`).

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone as _, Timelike, Utc};
use chrono_tz::Tz;
use homestream_crds::format::cron::{CronFields, Schedule, TimeZone};
use homestream_crds::scrapejob::Trigger;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::jiff::Timestamp;

/// How far ahead a run is looked for. A schedule such as `0 0 30 2 *` never runs;
/// robfig/cron gives up after five years too.
const HORIZON_DAYS: u64 = 5 * 366;

/// `status.nextScheduleTime` of a ScrapeJob whose runs are `cron_job`: `None` for a
/// single run, a suspended schedule, or a time zone the operator does not know (the
/// apiserver refuses that CronJob, and the reconcile error says so).
pub fn next_schedule_time(
    trigger: &Trigger,
    cron_job: &CronJob,
    now: Timestamp,
) -> Option<Timestamp> {
    let Trigger::Scheduled {
        parsed,
        time_zone,
        suspend: false,
        ..
    } = trigger
    else {
        return None;
    };
    let since = cron_job
        .status
        .as_ref()
        .and_then(|status| status.last_schedule_time.as_ref())
        .or(cron_job.metadata.creation_timestamp.as_ref())
        .map_or(now, |time| time.0);
    next_run(parsed, zone(time_zone.as_ref()).ok()?, since, now)
}

/// How long from `now` until the status must be refreshed for a run due at `next`: a
/// second past it, so that the CronJob controller has started the run (or skipped it,
/// which changes nothing the operator watches). Never less than a second.
pub fn until_after(next: Timestamp, now: Timestamp) -> std::time::Duration {
    let until = next.as_millisecond().saturating_sub(now.as_millisecond());
    std::time::Duration::from_millis(u64::try_from(until).unwrap_or(0))
        + std::time::Duration::from_secs(1)
}

/// The zone of `timeZone`; unset means UTC (the controller manager's usual local zone).
///
/// # Errors
/// When chrono-tz does not know the name (the apiserver refuses such a CronJob too).
pub fn zone(time_zone: Option<&TimeZone>) -> Result<Tz, String> {
    time_zone.map_or(Ok(Tz::UTC), |name| {
        name.as_str()
            .parse::<Tz>()
            .map_err(|_| format!("unknown time zone {name}"))
    })
}

/// The first run strictly after `now`, or `None` when none falls within five years.
///
/// Five-field schedules are evaluated in `zone`: a local time skipped by a
/// daylight-saving jump does not run, one repeated runs at its first occurrence.
/// `@every` runs at fixed intervals from `since` (the CronJob's last scheduled time,
/// or its creation), as the CronJob controller counts them.
pub fn next_run(
    schedule: &Schedule,
    zone: Tz,
    since: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    match schedule {
        Schedule::Every(interval) => {
            let interval = i64::try_from(interval.as_secs()).ok().filter(|s| *s > 0)?;
            let elapsed = (now.as_second() - since.as_second()).max(0);
            let intervals = elapsed / interval + 1;
            Timestamp::from_second(
                since
                    .as_second()
                    .checked_add(intervals.checked_mul(interval)?)?,
            )
            .ok()
        }
        Schedule::Fields(fields) => {
            let now = DateTime::<Utc>::from_timestamp(now.as_second(), 0)?;
            next_in_zone(fields, zone, now).and_then(|t| Timestamp::from_second(t.timestamp()).ok())
        }
    }
}

fn next_in_zone(fields: &CronFields, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Whole minutes only: the first candidate is the minute after `now`.
    let start =
        now.with_timezone(&zone).naive_local().with_second(0)? + chrono::Duration::minutes(1);
    let first_day = start.date();
    (0..HORIZON_DAYS)
        .filter_map(|offset| first_day.checked_add_days(Days::new(offset)))
        .filter(|date| day_matches(fields, *date))
        .find_map(|date| {
            let earliest = if date == first_day {
                start.time()
            } else {
                NaiveTime::MIN
            };
            times_of_day(fields)
                .filter(|time| *time >= earliest)
                .find_map(|time| zone.from_local_datetime(&date.and_time(time)).earliest())
        })
        .map(|local| local.with_timezone(&Utc))
}

/// robfig/cron: when either day field starts with `*` or `?`, both must match;
/// otherwise either may (so `1-31` next to `mon` means every day, as in Kubernetes).
fn day_matches(fields: &CronFields, date: NaiveDate) -> bool {
    let bit = |mask: u64, value: u32| mask & (1 << value) != 0;
    let day_of_month = bit(fields.days_of_month, date.day());
    let day_of_week = bit(fields.days_of_week, date.weekday().num_days_from_sunday());
    if !bit(fields.months, date.month()) {
        return false;
    }
    if fields.any_day {
        day_of_month && day_of_week
    } else {
        day_of_month || day_of_week
    }
}

fn times_of_day(fields: &CronFields) -> impl Iterator<Item = NaiveTime> + '_ {
    (0..24u32)
        .filter(|hour| fields.hours & (1 << hour) != 0)
        .flat_map(move |hour| {
            (0..60u32)
                .filter(|minute| fields.minutes & (1 << minute) != 0)
                .filter_map(move |minute| NaiveTime::from_hms_opt(hour, minute, 0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestream_crds::format::cron::CronSchedule;

    fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn the_status_is_refreshed_a_second_after_the_next_run() {
        let now = at("2026-03-01T10:00:00Z");
        assert_eq!(
            until_after(at("2026-03-01T10:05:00.250Z"), now),
            std::time::Duration::from_millis(301_250)
        );
        // A run already due (the reconcile came late) refreshes in a second.
        assert_eq!(
            until_after(at("2026-03-01T09:59:00Z"), now),
            std::time::Duration::from_secs(1)
        );
    }

    fn next(schedule: &str, time_zone: Option<&str>, now: &str) -> Option<String> {
        let parsed = CronSchedule::from(schedule).parse().unwrap();
        let zone = zone(time_zone.map(TimeZone::from).as_ref()).unwrap();
        next_run(&parsed, zone, at("2026-01-01T00:00:00Z"), at(now)).map(|t| t.to_string())
    }

    #[test]
    fn five_fields_in_utc() {
        assert_eq!(
            next("0 */6 * * *", None, "2026-03-10T07:15:30Z").as_deref(),
            Some("2026-03-10T12:00:00Z")
        );
        // Strictly after: a run due exactly now is not the next one.
        assert_eq!(
            next("0 */6 * * *", None, "2026-03-10T12:00:00Z").as_deref(),
            Some("2026-03-10T18:00:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", None, "2026-03-10T23:59:00Z").as_deref(),
            Some("2026-03-11T00:00:00Z")
        );
    }

    #[test]
    fn descriptors() {
        let now = "2026-03-10T07:15:00Z";
        assert_eq!(
            next("@hourly", None, now).as_deref(),
            Some("2026-03-10T08:00:00Z")
        );
        assert_eq!(
            next("@daily", None, now).as_deref(),
            Some("2026-03-11T00:00:00Z")
        );
        // 2026-03-15 is a Sunday.
        assert_eq!(
            next("@weekly", None, now).as_deref(),
            Some("2026-03-15T00:00:00Z")
        );
        assert_eq!(
            next("@monthly", None, now).as_deref(),
            Some("2026-04-01T00:00:00Z")
        );
        assert_eq!(
            next("@yearly", None, now).as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn every_counts_intervals_from_the_last_scheduled_time() {
        // since 2026-01-01T00:00:00Z, every 90 minutes: 06:00, 07:30, 09:00 on Jan 1.
        assert_eq!(
            next("@every 1h30m", None, "2026-01-01T07:45:00Z").as_deref(),
            Some("2026-01-01T09:00:00Z")
        );
        assert_eq!(
            next("@every 1h30m", None, "2026-01-01T07:30:00Z").as_deref(),
            Some("2026-01-01T09:00:00Z")
        );
    }

    #[test]
    fn the_time_zone_moves_the_run_and_follows_daylight_saving() {
        // 09:00 in London is 09:00 UTC in winter and 08:00 UTC in summer.
        assert_eq!(
            next("0 9 * * *", Some("Europe/London"), "2026-01-10T10:00:00Z").as_deref(),
            Some("2026-01-11T09:00:00Z")
        );
        assert_eq!(
            next("0 9 * * *", Some("Europe/London"), "2026-07-10T10:00:00Z").as_deref(),
            Some("2026-07-11T08:00:00Z")
        );
        // 01:30 does not exist in London on 2026-03-29 (clocks go 01:00 -> 02:00): skipped.
        assert_eq!(
            next("30 1 * * *", Some("Europe/London"), "2026-03-28T12:00:00Z").as_deref(),
            Some("2026-03-30T00:30:00Z")
        );
        // 01:30 happens twice on 2026-10-25 (02:00 -> 01:00): it runs at the first one.
        assert_eq!(
            next("30 1 * * *", Some("Europe/London"), "2026-10-24T12:00:00Z").as_deref(),
            Some("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_combine_as_in_a_cronjob() {
        // Both restricted: either matches (the 13th, or any Friday).
        // 2026-03-10 is a Tuesday; Friday 2026-03-13 is both; after it, Friday the 20th.
        assert_eq!(
            next("0 0 13 * fri", None, "2026-03-10T00:00:00Z").as_deref(),
            Some("2026-03-13T00:00:00Z")
        );
        assert_eq!(
            next("0 0 11 * fri", None, "2026-03-10T00:00:00Z").as_deref(),
            Some("2026-03-11T00:00:00Z")
        );
        // One is `*`: both must match (Mondays only).
        assert_eq!(
            next("0 0 * * mon", None, "2026-03-10T00:00:00Z").as_deref(),
            Some("2026-03-16T00:00:00Z")
        );
        // A full range is not `*`: either matches, so every day.
        assert_eq!(
            next("0 0 1-31 * mon", None, "2026-03-10T00:00:00Z").as_deref(),
            Some("2026-03-11T00:00:00Z")
        );
    }

    #[test]
    fn a_schedule_that_never_comes_has_no_next_run() {
        assert_eq!(next("0 0 30 2 *", None, "2026-03-10T00:00:00Z"), None);
        assert_eq!(
            next("0 0 29 2 *", None, "2026-03-10T00:00:00Z").as_deref(),
            Some("2028-02-29T00:00:00Z")
        );
    }

    fn trigger(extra: serde_json::Value) -> Trigger {
        let mut spec = serde_json::json!({
            "source": { "http": { "url": "https://api.example.com/listings" } },
            "extract": {
                "items": { "json": { "path": "$.results[*]" } },
                "fields": [ { "name": "id", "jsonPath": "$.id" } ],
                "key": "id"
            },
            "output": { "topic": { "name": "listings.raw" } }
        });
        for (key, value) in extra.as_object().unwrap() {
            spec[key] = value.clone();
        }
        let spec: homestream_crds::ScrapeJobSpec = serde_json::from_value(spec).unwrap();
        spec.validate().unwrap().trigger
    }

    #[test]
    fn status_has_a_next_run_only_for_an_active_schedule() {
        let cron_job: CronJob = serde_json::from_value(serde_json::json!({
            "metadata": { "creationTimestamp": "2026-01-01T00:00:00Z" },
            "spec": { "schedule": "@every 1h", "jobTemplate": {} },
            "status": { "lastScheduleTime": "2026-01-01T00:20:00Z" }
        }))
        .unwrap();
        let now = at("2026-01-01T01:00:00Z");
        let scheduled = |extra| next_schedule_time(&trigger(extra), &cron_job, now);
        // @every counts from the last scheduled run, not from the CronJob's creation.
        assert_eq!(
            scheduled(serde_json::json!({ "schedule": "@every 1h" })),
            Some(at("2026-01-01T01:20:00Z"))
        );
        assert_eq!(
            scheduled(serde_json::json!({ "schedule": "0 9 * * *", "timeZone": "Europe/London" })),
            Some(at("2026-01-01T09:00:00Z"))
        );
        assert_eq!(
            scheduled(serde_json::json!({ "schedule": "@hourly", "suspend": true })),
            None
        );
        assert_eq!(scheduled(serde_json::json!({})), None);
    }

    #[test]
    fn an_unknown_time_zone_is_an_error() {
        assert_eq!(
            zone(Some(&TimeZone::from("Mars/Olympus_Mons"))).unwrap_err(),
            "unknown time zone Mars/Olympus_Mons"
        );
    }
}
