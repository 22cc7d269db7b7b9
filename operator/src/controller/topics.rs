//! The topic phase every kind shares: the input topic must exist, and each declared
//! topic is converged unless an older resource declares it otherwise.

use homestream_crds::conditions::{INPUT_TOPIC_READY, TOPIC_READY};
use homestream_crds::topic::TopicSpec;
use homestream_crds::{CassandraSink, ScrapeJob, StreamTransform};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use crate::kafka::{KafkaAdmin, KafkaAdminError, TopicDefaults, TopicOutcome};
use crate::status::Observed;
use crate::topic_conflict::{TopicDeclaration, winning_conflict};

/// The controllers' caches of all three kinds: topic declarations are read from them,
/// not listed from the apiserver on every reconcile.
#[derive(Clone)]
pub struct Declarations {
    /// ScrapeJobs (output topics).
    pub scrape_jobs: Store<ScrapeJob>,
    /// StreamTransforms (input, output and dead-letter topics).
    pub transforms: Store<StreamTransform>,
    /// CassandraSinks (input and dead-letter topics).
    pub sinks: Store<CassandraSink>,
}

impl Declarations {
    /// Every topic declared by a watched resource.
    pub fn all(&self) -> Vec<TopicDeclaration> {
        let mut declarations = Vec::new();
        for job in self.scrape_jobs.state() {
            declarations.push(declaration(job.as_ref(), &job.spec.output.topic));
        }
        for transform in self.transforms.state() {
            declarations.push(declaration(
                transform.as_ref(),
                &transform.spec.output.topic,
            ));
            if let Some(dead_letter) = &transform.spec.dead_letter {
                declarations.push(declaration(transform.as_ref(), &dead_letter.topic));
            }
        }
        for sink in self.sinks.state() {
            if let Some(dead_letter) = &sink.spec.dead_letter {
                declarations.push(declaration(sink.as_ref(), &dead_letter.topic));
            }
        }
        declarations
    }

    /// Every topic a watched resource writes or reads, as `(owner, topic)`: what
    /// `deletionPolicy: Delete` must not delete from under another resource.
    pub fn uses(&self) -> Vec<(String, String)> {
        let mut uses: Vec<(String, String)> = self
            .all()
            .into_iter()
            .map(|declaration| (declaration.owner, declaration.topic.name.to_string()))
            .collect();
        for transform in self.transforms.state() {
            let topic = transform.spec.input.topic.as_str().to_owned();
            uses.push((owner_name(transform.as_ref()), topic));
        }
        for sink in self.sinks.state() {
            uses.push((
                owner_name(sink.as_ref()),
                sink.spec.input.topic.as_str().to_owned(),
            ));
        }
        uses
    }
}

/// How a resource is named in topic declarations and conflict messages: `Kind namespace/name`.
pub fn owner_name<K: Resource<DynamicType = ()>>(resource: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        resource.namespace().unwrap_or_default(),
        resource.name_any()
    )
}

/// The declaration of `topic` by `resource`.
pub fn declaration<K: Resource<DynamicType = ()>>(
    resource: &K,
    topic: &TopicSpec,
) -> TopicDeclaration {
    TopicDeclaration {
        owner: owner_name(resource),
        created: resource.meta().creation_timestamp.as_ref().map(|t| t.0),
        creator: super::created::recorded(resource, super::created::TOPICS)
            .contains(topic.name.as_str()),
        topic: topic.clone(),
    }
}

/// What converging the declared topics did.
pub struct Converged {
    /// `TopicReady`.
    pub condition: Observed,
    /// The topics this reconcile created (to be recorded, see [`super::created`]).
    pub created: Vec<String>,
}

/// Converges the topics `declared` by one resource (see [`declaration`]) and reports
/// `TopicReady`; `everyone` holds all watched declarations, from the caches.
///
/// # Errors
/// When Kafka cannot be reached (the caller reports the outage).
pub async fn converge(
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
pub async fn input(admin: &KafkaAdmin, topic: &str) -> Result<Observed, KafkaAdminError> {
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
pub fn kafka_unavailable(
    type_: &'static str,
    bootstrap: &str,
    error: &KafkaAdminError,
) -> Observed {
    Observed::failed(type_, error.reason(), error.describe(bootstrap))
}
