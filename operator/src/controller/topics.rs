//! The topic phase every kind shares: the input topic must exist, and each declared
//! topic is converged unless an older resource declares it otherwise.

use homestream_crds::conditions::{INPUT_TOPIC_READY, TOPIC_READY};
use homestream_crds::topic::TopicSpec;
use homestream_crds::{CassandraSink, ScrapeJob, StreamTransform};
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};

use crate::kafka::{KafkaAdmin, KafkaAdminError, TopicDefaults, TopicOutcome};
use crate::status::Observed;
use crate::topic_conflict::{TopicDeclaration, winning_conflict};

/// Every topic declared by any resource in the cluster (topics are global to Kafka).
///
/// # Errors
/// When the resources cannot be listed.
pub async fn all_declarations(client: &Client) -> Result<Vec<TopicDeclaration>, kube::Error> {
    let mut declarations = Vec::new();
    for job in Api::<ScrapeJob>::all(client.clone()).list(&ListParams::default()).await? {
        declarations.push(declaration(&job, &job.spec.output.topic));
    }
    for transform in Api::<StreamTransform>::all(client.clone()).list(&ListParams::default()).await? {
        declarations.push(declaration(&transform, &transform.spec.output.topic));
        if let Some(dead_letter) = &transform.spec.dead_letter {
            declarations.push(declaration(&transform, &dead_letter.topic));
        }
    }
    for sink in Api::<CassandraSink>::all(client.clone()).list(&ListParams::default()).await? {
        if let Some(dead_letter) = &sink.spec.dead_letter {
            declarations.push(declaration(&sink, &dead_letter.topic));
        }
    }
    Ok(declarations)
}

/// The declaration of `topic` by `resource`.
pub fn declaration<K: Resource<DynamicType = ()>>(resource: &K, topic: &TopicSpec) -> TopicDeclaration {
    TopicDeclaration {
        owner: format!("{} {}/{}", K::kind(&()), resource.namespace().unwrap_or_default(), resource.name_any()),
        created: resource.meta().creation_timestamp.as_ref().map(|t| t.0),
        topic: topic.clone(),
    }
}

/// Converges the `declared` topics of `owner` and reports `TopicReady`.
///
/// # Errors
/// When Kafka cannot be reached (the caller reports the outage).
pub async fn converge(
    admin: &KafkaAdmin,
    owner: &str,
    declared: &[&TopicSpec],
    everyone: &[TopicDeclaration],
    defaults: TopicDefaults,
) -> Result<Observed, KafkaAdminError> {
    let mut created = Vec::new();
    for topic in declared {
        let mine = TopicDeclaration { owner: owner.to_owned(), created: None, topic: (*topic).clone() };
        let mine = everyone.iter().find(|d| d.owner == owner && d.topic.name == topic.name).unwrap_or(&mine);
        if let Some(winner) = winning_conflict(mine, everyone) {
            return Ok(Observed::failed(
                TOPIC_READY,
                "TopicConflict",
                format!(
                    "topic {} is declared with other settings by the older {}; align the declarations \
                     (this resource leaves the topic alone until then)",
                    topic.name, winner.owner
                ),
            ));
        }
        match admin.ensure(topic, defaults).await? {
            TopicOutcome::Ready { created: true } => created.push(topic.name.to_string()),
            TopicOutcome::Ready { created: false } => {}
            TopicOutcome::Refused { reason, message } => return Ok(Observed::failed(TOPIC_READY, reason, message)),
        }
    }
    let names: Vec<String> = declared.iter().map(|t| t.name.to_string()).collect();
    let message = if created.is_empty() {
        format!("topics {} match the spec", names.join(", "))
    } else {
        format!("created {}; topics {} match the spec", created.join(", "), names.join(", "))
    };
    Ok(Observed::ok(TOPIC_READY, "TopicsReady", message))
}

/// Reports `InputTopicReady`: the topic a consumer reads exists.
///
/// # Errors
/// When Kafka cannot be reached.
pub async fn input(admin: &KafkaAdmin, topic: &str) -> Result<Observed, KafkaAdminError> {
    Ok(match admin.describe(topic).await? {
        Some((partitions, _)) => {
            Observed::ok(INPUT_TOPIC_READY, "Exists", format!("topic {topic} exists with {partitions} partitions"))
        }
        None => Observed::failed(
            INPUT_TOPIC_READY,
            "InputTopicMissing",
            format!("waiting for topic {topic} to exist (declare it as another resource's output, or create it)"),
        ),
    })
}

/// The condition reporting that Kafka could not be reached.
pub fn kafka_unavailable(type_: &'static str, admin: &KafkaAdmin, error: &KafkaAdminError) -> Observed {
    Observed::failed(type_, "KafkaUnavailable", format!("Kafka at {} is unreachable: {error}", admin.bootstrap()))
}
