//! Conditions as the controllers report them: a pure merge that keeps
//! `lastTransitionTime` unless the status really changed, so that rewriting the same
//! status is a no-op (and triggers no new reconcile).

use homestream_crds::conditions::{DEGRADED, PROGRESSING, READY};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The status of a kind: its conditions and the generation they describe.
pub trait KindStatus: Clone + Default + PartialEq + serde::Serialize {
    /// The conditions written last time.
    fn conditions(&self) -> &[Condition];
    /// This status with new conditions for `generation`.
    fn with_conditions(&self, generation: Option<i64>, conditions: Vec<Condition>) -> Self;
}

macro_rules! kind_status {
    ($($status:ty),*) => {$(
        impl KindStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }

            fn with_conditions(&self, generation: Option<i64>, conditions: Vec<Condition>) -> Self {
                Self { observed_generation: generation, conditions, ..self.clone() }
            }
        }
    )*};
}

kind_status!(
    homestream_crds::ScrapeJobStatus,
    homestream_crds::StreamTransformStatus,
    homestream_crds::CassandraSinkStatus,
    homestream_crds::DeltaSinkStatus
);

/// One condition as a controller decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Condition type, e.g. `TopicReady`.
    pub type_: &'static str,
    /// Whether it holds.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human message.
    pub message: String,
}

impl Observed {
    /// A condition that holds.
    pub fn ok(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn failed(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// The conditions to write: `observed` (kind-specific) plus the summary `Ready`,
/// `Progressing` and `Degraded` derived from them. `progressing` names what is still
/// moving (a rollout), `None` when nothing is. Each keeps its `lastTransitionTime` from
/// `previous` when its status did not change.
pub fn conditions(
    previous: &[Condition],
    observed: Vec<Observed>,
    progressing: Option<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let failing: Vec<&Observed> = observed.iter().filter(|c| !c.status).collect();
    let ready = match (failing.first(), &progressing) {
        (Some(first), _) => Observed::failed(READY, &first.reason, first.message.clone()),
        (None, Some(what)) => Observed::failed(READY, "Progressing", what.clone()),
        (None, None) => Observed::ok(READY, "Ready", "all conditions hold"),
    };
    let degraded = match failing.first() {
        Some(first) => Observed::ok(DEGRADED, &first.reason, summary(&failing)),
        None => Observed::failed(DEGRADED, "AsExpected", "nothing is failing"),
    };
    let progressing = match progressing {
        Some(what) => Observed::ok(PROGRESSING, "RollingOut", what),
        None => Observed::failed(PROGRESSING, "Complete", "the world matches the spec"),
    };
    std::iter::once(ready)
        .chain([progressing, degraded])
        .chain(observed)
        .map(|c| merge(previous, c, generation, now))
        .collect()
}

fn summary(failing: &[&Observed]) -> String {
    failing
        .iter()
        .map(|c| format!("{}: {}", c.type_, c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn merge(
    previous: &[Condition],
    observed: Observed,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if observed.status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == observed.type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: observed.type_.to_owned(),
        status: status.to_owned(),
        reason: observed.reason,
        message: observed.message,
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestream_crds::conditions::TOPIC_READY;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn all_holding_means_ready_and_not_degraded() {
        let out = conditions(
            &[],
            vec![Observed::ok(TOPIC_READY, "Created", "ok")],
            None,
            Some(1),
            at(10),
        );
        assert_eq!(find(&out, READY).status, "True");
        assert_eq!(find(&out, DEGRADED).status, "False");
        assert_eq!(find(&out, PROGRESSING).status, "False");
    }

    #[test]
    fn a_failing_condition_makes_ready_false_with_its_reason() {
        let failing = Observed::failed(TOPIC_READY, "PartitionDecrease", "cannot shrink");
        let out = conditions(&[], vec![failing], None, Some(2), at(10));
        let ready = find(&out, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "PartitionDecrease")
        );
        let degraded = find(&out, DEGRADED);
        assert_eq!(degraded.status, "True");
        assert!(
            degraded.message.contains("TopicReady: cannot shrink"),
            "{}",
            degraded.message
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = conditions(
            &[],
            vec![Observed::ok(TOPIC_READY, "Created", "ok")],
            None,
            Some(1),
            at(10),
        );
        let same = conditions(
            &first,
            vec![Observed::ok(TOPIC_READY, "Exists", "ok")],
            None,
            Some(1),
            at(20),
        );
        assert_eq!(find(&same, TOPIC_READY).last_transition_time, Time(at(10)));
        let changed = conditions(
            &same,
            vec![Observed::failed(TOPIC_READY, "KafkaUnavailable", "down")],
            None,
            Some(1),
            at(30),
        );
        assert_eq!(
            find(&changed, TOPIC_READY).last_transition_time,
            Time(at(30))
        );
        assert_eq!(find(&changed, READY).last_transition_time, Time(at(30)));
    }

    #[test]
    fn a_rollout_is_progressing_and_not_ready() {
        let out = conditions(
            &[],
            vec![],
            Some("1 of 2 pods ready".into()),
            Some(1),
            at(10),
        );
        assert_eq!(find(&out, PROGRESSING).status, "True");
        assert_eq!(find(&out, READY).reason, "Progressing");
    }
}
