//! Cron schedules and time zones, in the dialect Kubernetes CronJobs accept
//! (five fields, names for months and weekdays, `@hourly`-style descriptors and
//! `@every <duration>`).

use std::time::Duration as StdDuration;

use super::string_format;

string_format! {
    /// A cron schedule: five fields (minute hour day-of-month month day-of-week), a
    /// descriptor (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`) or
    /// `@every <duration>`. The time zone is `timeZone`, never part of the schedule.
    CronSchedule,
    max_length = 128,
    rules = [(
        "self.matches('^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every ([0-9]+([.][0-9]+)?(ms|s|m|h))+|[0-9A-Za-z*?,/-]+( +[0-9A-Za-z*?,/-]+){4})$')",
        "must be a cron schedule of five fields (e.g. '0 */6 * * *') or a descriptor such as @daily; set the time zone in timeZone, not in the schedule"
    )]
}

string_format! {
    /// An IANA time zone name such as `Europe/London` or `Etc/UTC`.
    TimeZone,
    max_length = 64,
    rules = [(
        "self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$')",
        "must be an IANA time zone name such as Europe/London"
    )]
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Runs at the times the five fields select.
    Fields(CronFields),
    /// Runs at a fixed interval (`@every`).
    Every(StdDuration),
}

/// The times a five-field schedule selects, one bit per allowed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronFields {
    /// Minutes 0-59.
    pub minutes: u64,
    /// Hours 0-23.
    pub hours: u64,
    /// Days of the month 1-31.
    pub days_of_month: u64,
    /// Months 1-12.
    pub months: u64,
    /// Days of the week 0-6, Sunday is 0.
    pub days_of_week: u64,
    /// Whether either day field starts with `*` or `?` (`*`, `*/2`): then a day must
    /// match both day fields, otherwise either (Kubernetes' cron library, robfig/cron).
    pub any_day: bool,
}

/// Why a schedule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five fields.
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {0}")]
    FieldCount(usize),
    /// A field has a value that does not parse or is out of range.
    #[error("{field} field: {message}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Unknown `@` descriptor.
    #[error(
        "unknown descriptor {0:?} (use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>)"
    )]
    Descriptor(String),
    /// A time zone inside the schedule.
    #[error("set the time zone in timeZone, not as TZ= or CRON_TZ= in the schedule")]
    TimeZoneInSchedule,
    /// `@every` with a bad or too short duration.
    #[error("@every needs a duration of at least 1s: {0}")]
    Every(String),
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl CronSchedule {
    /// Parses the schedule.
    ///
    /// # Errors
    /// When the schedule is not one that a Kubernetes CronJob accepts.
    pub fn parse(&self) -> Result<Schedule, CronError> {
        let text = self.as_str().trim();
        if text.starts_with("TZ=") || text.starts_with("CRON_TZ=") {
            return Err(CronError::TimeZoneInSchedule);
        }
        if let Some(descriptor) = text.strip_prefix('@') {
            return parse_descriptor(descriptor);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(CronError::FieldCount(fields.len()));
        };
        Ok(Schedule::Fields(CronFields {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week: parse_field(day_of_week, &DAY_OF_WEEK)?,
            any_day: [day_of_month, day_of_week]
                .iter()
                .any(|field| field.starts_with(['*', '?'])),
        }))
    }
}

fn parse_descriptor(descriptor: &str) -> Result<Schedule, CronError> {
    let fields = match descriptor {
        "yearly" | "annually" => "0 0 1 1 *",
        "monthly" => "0 0 1 * *",
        "weekly" => "0 0 * * 0",
        "daily" | "midnight" => "0 0 * * *",
        "hourly" => "0 * * * *",
        other => {
            let Some(every) = other.strip_prefix("every ") else {
                return Err(CronError::Descriptor(format!("@{other}")));
            };
            let interval = super::duration::parse(every.trim())
                .map_err(|error| CronError::Every(error.to_string()))?;
            if interval < StdDuration::from_secs(1) {
                return Err(CronError::Every(format!("{every} is shorter than 1s")));
            }
            return Ok(Schedule::Every(interval));
        }
    };
    CronSchedule(fields.to_owned()).parse()
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, CronError> {
    let error = |message: String| CronError::Field {
        field: spec.name,
        message,
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| error(format!("step {step:?} must be a positive number")))?;
                (range, Some(step))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((start, end)) = range.split_once('-') {
            (
                value(start, spec).map_err(error)?,
                value(end, spec).map_err(error)?,
            )
        } else {
            let start = value(range, spec).map_err(error)?;
            // `N/step` runs from N to the end of the range, as in robfig/cron.
            (start, if step.is_some() { spec.max } else { start })
        };
        if start > end {
            return Err(error(format!("range {range:?} runs backwards")));
        }
        let step = step.unwrap_or(1);
        bits |= (start..=end)
            .step_by(step as usize)
            .fold(0u64, |acc, v| acc | (1 << v));
    }
    Ok(bits)
}

fn value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let parsed = match spec.names.iter().position(|name| *name == lower) {
        Some(index) => u32::try_from(index).map(|index| index + spec.min).ok(),
        None => text.parse().ok(),
    };
    match parsed {
        Some(v) if (spec.min..=spec.max).contains(&v) => Ok(v),
        Some(v) => Err(format!("{v} is outside {}-{}", spec.min, spec.max)),
        None => Err(format!(
            "{text:?} is not a number{}",
            if spec.names.is_empty() {
                ""
            } else {
                " or name"
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Schedule, CronError> {
        CronSchedule::from(text).parse()
    }

    fn fields(text: &str) -> CronFields {
        match parse(text).unwrap() {
            Schedule::Fields(fields) => fields,
            Schedule::Every(_) => panic!("expected fields"),
        }
    }

    #[test]
    fn parses_steps_ranges_lists_and_names() {
        let f = fields("*/15 6-9,18 1 JAN-mar mon-fri");
        assert_eq!(f.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(f.hours, 0b1111 << 6 | 1 << 18);
        assert_eq!(f.days_of_month, 1 << 1);
        assert_eq!(f.months, 0b111 << 1);
        assert_eq!(f.days_of_week, 0b11111 << 1);
        assert_eq!(fields("5/20 * * * *").minutes, 1 << 5 | 1 << 25 | 1 << 45);
    }

    #[test]
    fn expands_descriptors() {
        assert_eq!(fields("@daily"), fields("0 0 * * *"));
        assert_eq!(fields("@weekly"), fields("0 0 * * sun"));
        assert_eq!(
            parse("@every 1h30m").unwrap(),
            Schedule::Every(StdDuration::from_secs(5400))
        );
    }

    #[test]
    fn refuses_what_a_cronjob_refuses() {
        let cases = [
            (
                "0 0 * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
            ),
            (
                "0 0 * * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 6",
            ),
            ("60 * * * *", "minute field: 60 is outside 0-59"),
            ("0 24 * * *", "hour field: 24 is outside 0-23"),
            ("0 0 0 * *", "day-of-month field: 0 is outside 1-31"),
            ("0 0 * 13 *", "month field: 13 is outside 1-12"),
            ("0 0 * * 7", "day-of-week field: 7 is outside 0-6"),
            ("0 0 L * *", "day-of-month field: \"L\" is not a number"),
            (
                "*/0 * * * *",
                "minute field: step \"0\" must be a positive number",
            ),
            ("0 9-5 * * *", "hour field: range \"9-5\" runs backwards"),
            (
                "0 0 * * funday",
                "day-of-week field: \"funday\" is not a number or name",
            ),
            (
                "@fortnightly",
                "unknown descriptor \"@fortnightly\" (use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>)",
            ),
            (
                "@every 500ms",
                "@every needs a duration of at least 1s: 500ms is shorter than 1s",
            ),
            (
                "TZ=Europe/London 0 0 * * *",
                "set the time zone in timeZone, not as TZ= or CRON_TZ= in the schedule",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse(text).unwrap_err().to_string(), message, "{text}");
        }
    }
}
