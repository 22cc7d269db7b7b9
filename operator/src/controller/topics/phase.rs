//! The topic phase every kind runs: the input topic must exist, each declared topic
//! is converged unless an older resource declares it otherwise, what the operator
//! created is recorded at once, and `deletionPolicy: Delete` deletes only that.

use std::collections::BTreeSet;

use homestream_crds::conditions::{INPUT_TOPIC_READY, TOPIC_READY};
use homestream_crds::topic::TopicSpec;
use kube::Resource;
use serde::de::DeserializeOwned;

use super::declarations::{TopicDeclaration, declaration, owner_name, winning_conflict};
use crate::config::KafkaSettings;
use crate::controller::{Context, Error, created};
use crate::kafka::{KafkaAdmin, KafkaAdminError, TopicDefaults, TopicOutcome};
use crate::status::Observed;

/// What the topic phase found for one resource.
pub struct TopicPhase {
    /// The admin client, when Kafka answered (otherwise the caller backs off).
    pub admin: Option<KafkaAdmin>,
    /// `InputTopicReady`, for a resource that reads a topic.
    pub input: Option<Observed>,
    /// `TopicReady`: the declared topics.
    pub output: Observed,
}

impl TopicPhase {
    /// Whether the topics the workload reads and writes are ready for it.
    pub fn ready(&self) -> bool {
        self.output.status && self.input.as_ref().is_none_or(|input| input.status)
    }

    /// Why Kafka did not answer (the conditions' reason): the caller backs off and
    /// counts the failure.
    pub fn kafka_failure(&self) -> Option<String> {
        self.admin.is_none().then(|| self.output.reason.clone())
    }
}

/// The topic phase of `resource`: `input` (the topic it reads, if any) must exist, the
/// topics it `declared` are converged, and those the operator created are recorded on
/// the resource before anything else can fail (an unrecorded topic would be retained).
///
/// # Errors
/// When the apiserver refuses the record; Kafka's failures are conditions.
pub async fn run<K>(
    ctx: &Context,
    resource: &K,
    kafka: &KafkaSettings,
    declared: &[&TopicSpec],
    input: Option<&str>,
) -> Result<TopicPhase, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    let declared: Vec<TopicDeclaration> = declared
        .iter()
        .map(|topic| declaration(resource, topic))
        .collect();
    let everyone = ctx.declarations.all();
    let defaults = TopicDefaults {
        partitions: ctx.config.default_partitions,
        replication_factor: ctx.config.default_replication_factor,
    };
    let outcome = async {
        let admin = ctx.kafka(&kafka.endpoint())?;
        let input = match input {
            Some(topic) => Some(input_condition(&admin, topic).await?),
            None => None,
        };
        let converged = converge(&admin, &declared, &everyone, defaults).await?;
        Ok::<_, KafkaAdminError>((admin, input, converged))
    }
    .await;
    match outcome {
        Ok((admin, input, converged)) => {
            created::record(ctx, resource, created::TOPICS, &converged.created).await?;
            Ok(TopicPhase {
                admin: Some(admin),
                input,
                output: converged.condition,
            })
        }
        Err(error) => {
            let bootstrap = kafka.bootstrap_servers.join(",");
            Ok(TopicPhase {
                admin: None,
                input: input.map(|_| kafka_unavailable(INPUT_TOPIC_READY, &bootstrap, &error)),
                output: kafka_unavailable(TOPIC_READY, &bootstrap, &error),
            })
        }
    }
}

/// What converging the declared topics did.
struct Converged {
    /// `TopicReady`.
    condition: Observed,
    /// The topics this reconcile created (to be recorded, see [`super::created`]).
    created: Vec<String>,
}

/// Converges the topics `declared` by one resource (see [`declaration`]) and reports
/// `TopicReady`; `everyone` holds all watched declarations, from the caches.
///
/// # Errors
/// When Kafka cannot be reached (the caller reports the outage).
async fn converge(
    admin: &KafkaAdmin,
    declared: &[TopicDeclaration],
    everyone: &[TopicDeclaration],
    defaults: TopicDefaults,
) -> Result<Converged, KafkaAdminError> {
    let mut created = Vec::new();
    for mine in declared {
        let topic = &mine.topic;
        if let Some(winner) = winning_conflict(mine, everyone) {
            let condition = Observed::failed(
                TOPIC_READY,
                "TopicConflict",
                format!(
                    "topic {} is declared with other settings by the older {}; align the declarations \
                     (this resource leaves the topic alone until then)",
                    topic.name, winner.owner
                ),
            );
            return Ok(Converged { condition, created });
        }
        match admin.ensure(topic, defaults).await? {
            TopicOutcome::Ready { created: true } => created.push(topic.name.to_string()),
            TopicOutcome::Ready { created: false } => {}
            TopicOutcome::Refused { reason, message } => {
                let condition = Observed::failed(TOPIC_READY, reason, message);
                return Ok(Converged { condition, created });
            }
        }
    }
    let names: Vec<String> = declared.iter().map(|d| d.topic.name.to_string()).collect();
    let message = if created.is_empty() {
        format!("topics {} match the spec", names.join(", "))
    } else {
        format!(
            "created {}; topics {} match the spec",
            created.join(", "),
            names.join(", ")
        )
    };
    Ok(Converged {
        condition: Observed::ok(TOPIC_READY, "TopicsReady", message),
        created,
    })
}

/// Reports `InputTopicReady`: the topic a consumer reads exists.
///
/// # Errors
/// When Kafka cannot be reached.
async fn input_condition(admin: &KafkaAdmin, topic: &str) -> Result<Observed, KafkaAdminError> {
    Ok(match admin.describe(topic).await? {
        Some((partitions, _)) => Observed::ok(
            INPUT_TOPIC_READY,
            "Exists",
            format!("topic {topic} exists with {partitions} partitions"),
        ),
        None => Observed::failed(
            INPUT_TOPIC_READY,
            "InputTopicMissing",
            format!(
                "waiting for topic {topic} to exist (declare it as another resource's output, or create it)"
            ),
        ),
    })
}

/// The condition reporting that Kafka at `bootstrap` could not be used: unreachable,
/// refusing the operator's login or TLS handshake, or the operator's own credentials
/// unreadable (see [`KafkaAdminError::reason`]).
fn kafka_unavailable(type_: &'static str, bootstrap: &str, error: &KafkaAdminError) -> Observed {
    Observed::failed(type_, error.reason(), error.describe(bootstrap))
}

/// The topics `cleanup` deletes: those recorded as created for `owner` that no other
/// watched resource still writes or reads (`uses`, as `(owner, topic)`): a topic in use
/// stays, whoever created it.
pub fn deletable(
    recorded: &BTreeSet<String>,
    owner: &str,
    uses: &[(String, String)],
) -> Vec<String> {
    recorded
        .iter()
        .filter(|topic| {
            !uses
                .iter()
                .any(|(user, used)| user != owner && used == *topic)
        })
        .cloned()
        .collect()
}

/// `deletionPolicy: Delete` for topics: deletes what [`deletable`] allows; a topic the
/// operator did not create for `resource` is left alone.
///
/// # Errors
/// When Kafka cannot be reached or refuses.
pub async fn delete_topics<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    admin: &KafkaAdmin,
    resource: &K,
) -> Result<(), Error> {
    let owner = owner_name(resource);
    for topic in deletable(
        &created::recorded(resource, created::TOPICS),
        &owner,
        &ctx.declarations.uses(),
    ) {
        tracing::info!(topic, "Deleting a topic the operator created.");
        admin.delete(&topic).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used_by(owner: &str, topic: &str) -> (String, String) {
        (owner.to_owned(), topic.to_owned())
    }

    #[test]
    fn only_recorded_topics_nobody_else_writes_or_reads_are_deleted() {
        let recorded: BTreeSet<String> = ["mine.out", "shared.out", "read.out"]
            .map(str::to_owned)
            .into();
        let uses = [
            used_by("StreamTransform ns/a", "mine.out"),
            used_by("StreamTransform ns/a", "shared.out"),
            used_by("StreamTransform ns/a", "read.out"),
            used_by("StreamTransform ns/a", "not-created.dlq"),
            used_by("ScrapeJob ns/b", "shared.out"),
            used_by("CassandraSink ns/c", "read.out"),
        ];
        assert_eq!(
            deletable(&recorded, "StreamTransform ns/a", &uses),
            ["mine.out"]
        );
    }
}
