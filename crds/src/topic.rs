//! Kafka topics as resources declare them (output, dead letter) and read them (input).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::name::{ConsumerGroup, TopicName};
use crate::validation::Problems;

/// A topic this resource writes to. The operator creates it if it is missing, raises
/// its partitions when `partitions` grows, and applies `config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.name == oldSelf.name")
        .message("topic name is immutable: create a new resource to write to another topic"),
    validation = Rule::new("!has(oldSelf.partitions) || (has(self.partitions) && self.partitions >= oldSelf.partitions)")
        .message("partitions can only grow: Kafka cannot remove partitions"),
    validation = Rule::new("!has(oldSelf.replicationFactor) || (has(self.replicationFactor) && self.replicationFactor == oldSelf.replicationFactor)")
        .message("replicationFactor is immutable once set")
)]
pub struct TopicSpec {
    /// Name of the topic. Immutable.
    pub name: TopicName,
    /// Number of partitions, 1 to 10000. It may grow later but never shrink. Unset: the
    /// operator's default (also used when the topic already exists with more).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub partitions: Option<i32>,
    /// Replication factor, 1 to 7. Immutable once set. Unset: the operator's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 7))]
    pub replication_factor: Option<i32>,
    /// Topic configuration overrides such as `retention.ms` or `cleanup.policy`; values
    /// are strings as Kafka expects them. At most 64 entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub config: Option<BTreeMap<String, String>>,
}

/// Where records go: the topic to write to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicOutput {
    /// The topic, created and managed by the operator.
    pub topic: TopicSpec,
}

/// A topic this resource reads, and how it joins it as a consumer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicInput {
    /// Name of the topic to read (usually another resource's output topic).
    pub topic: TopicName,
    /// Partitions of the input topic when known, 1 to 10000: `replicas` may not exceed it,
    /// since a consumer beyond the partition count would sit idle.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub partitions: Option<i32>,
    /// Kafka consumer group. Unset: `homestream.<namespace>.<name>`. Changing it starts
    /// over from `startFrom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<ConsumerGroup>,
    /// Where a consumer group without committed offsets starts: `Earliest` (the
    /// default: the whole retained topic) or `Latest` (only new records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_from: Option<StartFrom>,
}

/// Where a new consumer group starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum StartFrom {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after the group joins.
    Latest,
}

/// What happens to a record that cannot be processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum OnError {
    /// Send it to the dead-letter topic with the error and its origin in headers.
    DeadLetter,
    /// Drop it; it is counted in status.
    Drop,
}

/// Checks what the schema cannot: topic config keys look like Kafka config names.
pub(crate) fn check_declared(topic: &TopicSpec, path: &str, problems: &mut Problems) {
    for (key, value) in topic.config.iter().flatten() {
        let well_formed = key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.');
        if !well_formed {
            problems.push(
                format_args!("{path}.config[{key}]"),
                "is not a Kafka topic config name (lower-case words joined by '.', e.g. retention.ms)",
            );
        }
        if value.trim().is_empty() {
            problems.push(
                format_args!("{path}.config[{key}]"),
                "value must not be empty",
            );
        }
    }
}

/// The failure handling in force: the declared one, else `DeadLetter` when there is a
/// dead-letter topic and `Drop` otherwise.
pub(crate) fn on_error(
    declared: Option<OnError>,
    has_dead_letter: bool,
    path: &str,
    problems: &mut Problems,
) -> Option<OnError> {
    match (declared, has_dead_letter) {
        (Some(OnError::DeadLetter), false) => {
            problems.push(path, "DeadLetter needs deadLetter");
            None
        }
        (Some(declared), _) => Some(declared),
        (None, true) => Some(OnError::DeadLetter),
        (None, false) => Some(OnError::Drop),
    }
}

/// The replica count in force (default 1), checked against the input partitions when known.
pub(crate) fn replicas(
    declared: Option<i32>,
    input: &TopicInput,
    path: &str,
    problems: &mut Problems,
) -> Option<NonZeroU32> {
    let replicas = declared.unwrap_or(1);
    let Some(count) = u32::try_from(replicas).ok().and_then(NonZeroU32::new) else {
        problems.push(path, "must be at least 1");
        return None;
    };
    if let Some(partitions) = input.partitions
        && replicas > partitions
    {
        problems.push(
            path,
            format_args!("{replicas} exceeds input.partitions ({partitions})"),
        );
        return None;
    }
    Some(count)
}
