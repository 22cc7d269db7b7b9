//! Who declares which topic: every watched resource's declarations, read from the
//! controllers' caches, and the rule for two resources that declare one topic
//! differently (the older declaration wins; the newer one is told so in a condition
//! instead of the two fighting over the topic).

use homestream_crds::topic::TopicSpec;
use homestream_crds::{CassandraSink, DeltaSink, ScrapeJob, StreamTransform};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use crate::controller::created;

/// One resource's declaration of a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicDeclaration {
    /// The declaring resource, as `Kind namespace/name`.
    pub owner: String,
    /// When the declaring resource was created.
    pub created: Option<Timestamp>,
    /// Whether the operator created the topic for the declaring resource (its record):
    /// of two resources created in the same second, the one the topic was made for wins.
    pub creator: bool,
    /// What it declares.
    pub topic: TopicSpec,
}

impl TopicDeclaration {
    fn settings_differ(&self, other: &Self) -> bool {
        self.topic.partitions != other.topic.partitions
            || self.topic.replication_factor != other.topic.replication_factor
            || self.topic.config != other.topic.config
    }

    /// Older first. Creation times have whole seconds: in a tie the declaration the
    /// topic was created for comes first, then the owner name, so both sides agree.
    fn precedence(&self) -> (Option<Timestamp>, bool, &str) {
        (self.created, !self.creator, &self.owner)
    }
}

/// The older declaration of the same topic with other settings, if any: `mine` must
/// not touch the topic while it exists.
pub fn winning_conflict<'a>(
    mine: &TopicDeclaration,
    all: &'a [TopicDeclaration],
) -> Option<&'a TopicDeclaration> {
    all.iter()
        .filter(|other| other.owner != mine.owner && other.topic.name == mine.topic.name)
        .filter(|other| other.settings_differ(mine) && other.precedence() < mine.precedence())
        .min_by(|a, b| a.precedence().cmp(&b.precedence()))
}

/// The controllers' caches of every kind: topic declarations are read from them, not
/// listed from the apiserver on every reconcile.
#[derive(Clone)]
pub struct Declarations {
    /// ScrapeJobs (output topics).
    pub scrape_jobs: Store<ScrapeJob>,
    /// StreamTransforms (input, output and dead-letter topics).
    pub transforms: Store<StreamTransform>,
    /// CassandraSinks (input and dead-letter topics).
    pub sinks: Store<CassandraSink>,
    /// DeltaSinks (input and dead-letter topics).
    pub delta_sinks: Store<DeltaSink>,
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
        for sink in self.delta_sinks.state() {
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
        for sink in self.delta_sinks.state() {
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
        creator: created::recorded(resource, created::TOPICS).contains(topic.name.as_str()),
        topic: topic.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestream_crds::format::name::TopicName;

    fn declaration(owner: &str, created_second: i64, partitions: i32) -> TopicDeclaration {
        TopicDeclaration {
            owner: owner.to_owned(),
            created: Some(Timestamp::from_second(created_second).unwrap()),
            creator: false,
            topic: TopicSpec {
                name: TopicName("listings.raw".to_owned()),
                partitions: Some(partitions),
                replication_factor: None,
                config: None,
            },
        }
    }

    #[test]
    fn the_older_declaration_wins() {
        let older = declaration("ScrapeJob a/zoopla", 100, 3);
        let newer = declaration("ScrapeJob b/zoopla", 200, 6);
        let all = vec![older.clone(), newer.clone()];
        assert_eq!(winning_conflict(&newer, &all), Some(&older));
        assert_eq!(winning_conflict(&older, &all), None);
    }

    #[test]
    fn identical_declarations_do_not_conflict() {
        let a = declaration("ScrapeJob a/zoopla", 100, 3);
        let b = declaration("ScrapeJob b/rightmove", 200, 3);
        assert_eq!(winning_conflict(&b, &[a, b.clone()]), None);
    }

    #[test]
    fn a_tie_is_broken_by_owner_name() {
        let a = declaration("ScrapeJob a/x", 100, 3);
        let b = declaration("ScrapeJob b/x", 100, 4);
        let all = vec![a.clone(), b.clone()];
        assert_eq!(winning_conflict(&b, &all), Some(&a));
        assert_eq!(winning_conflict(&a, &all), None);
    }

    #[test]
    fn in_a_tie_the_declaration_the_topic_was_created_for_wins() {
        let a = declaration("ScrapeJob a/x", 100, 3);
        let b = TopicDeclaration {
            creator: true,
            ..declaration("ScrapeJob b/x", 100, 4)
        };
        let all = vec![a.clone(), b.clone()];
        assert_eq!(winning_conflict(&a, &all), Some(&b));
        assert_eq!(winning_conflict(&b, &all), None);
    }
}
