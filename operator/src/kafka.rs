//! Kafka topics as resources declare them: created when missing, partitions raised,
//! config applied; a partition decrease or replication change is refused (Kafka cannot
//! do either safely) and reported, never retried in a loop. Also reads consumer lag.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use homestream_crds::topic::TopicSpec;
use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

/// How long one admin or metadata request may take before Kafka counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure to talk to Kafka: transient, retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum KafkaAdminError {
    /// The client could not be created.
    #[error("creating a Kafka client for {bootstrap}: {source}")]
    Client {
        /// Bootstrap servers.
        bootstrap: String,
        /// The cause.
        source: KafkaError,
    },
    /// A request about a topic failed.
    #[error("{action} topic {topic}: {source}")]
    Request {
        /// What was attempted.
        action: &'static str,
        /// The topic.
        topic: String,
        /// The cause.
        source: KafkaError,
    },
    /// The broker refused an operation on a topic.
    #[error("{action} topic {topic}: the broker answered {code}")]
    Refused {
        /// What was attempted.
        action: &'static str,
        /// The topic.
        topic: String,
        /// Kafka's error code.
        code: RDKafkaErrorCode,
    },
    /// A blocking client call panicked or was cancelled.
    #[error("a Kafka client task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What became of a declared topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicOutcome {
    /// It exists with the declared settings.
    Ready {
        /// Whether this reconcile created it.
        created: bool,
    },
    /// The declaration asks for what Kafka cannot do; nothing was changed.
    Refused {
        /// CamelCase reason for the condition.
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Partitions and replication of a topic that does not state them.
#[derive(Clone, Copy, Debug)]
pub struct TopicDefaults {
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
}

/// An admin client for one set of bootstrap servers.
#[derive(Clone)]
pub struct KafkaAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
}

impl KafkaAdmin {
    /// Connects lazily to `bootstrap_servers`.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(bootstrap_servers: &[String]) -> Result<Self, KafkaAdminError> {
        let bootstrap = bootstrap_servers.join(",");
        let admin = base_config(&bootstrap)
            .create()
            .map_err(|source| KafkaAdminError::Client {
                bootstrap: bootstrap.clone(),
                source,
            })?;
        Ok(Self {
            admin: Arc::new(admin),
            bootstrap,
        })
    }

    /// The bootstrap servers this client talks to.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Partitions and replication factor of `topic`, or `None` when it does not exist.
    ///
    /// # Errors
    /// When Kafka cannot be reached.
    pub async fn describe(&self, topic: &str) -> Result<Option<(usize, usize)>, KafkaAdminError> {
        let admin = self.admin.clone();
        let name = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(&name), REQUEST_TIMEOUT)
                .map_err(|source| KafkaAdminError::Request {
                    action: "describing",
                    topic: name.clone(),
                    source,
                })?;
            Ok(metadata
                .topics()
                .iter()
                .find(|t| t.name() == name)
                .and_then(|t| {
                    let missing = t.error().is_some() || t.partitions().is_empty();
                    (!missing).then(|| (t.partitions().len(), t.partitions()[0].replicas().len()))
                }))
        })
        .await?
    }

    /// Makes `topic` match its declaration: create it, raise partitions, apply config.
    ///
    /// # Errors
    /// When Kafka cannot be reached or refuses a request.
    pub async fn ensure(
        &self,
        topic: &TopicSpec,
        defaults: TopicDefaults,
    ) -> Result<TopicOutcome, KafkaAdminError> {
        let name = topic.name.as_str();
        let Some((partitions, replication)) = self.describe(name).await? else {
            let created = self.create(topic, defaults).await?;
            return Ok(TopicOutcome::Ready { created });
        };
        let replication = i32::try_from(replication).unwrap_or(i32::MAX);
        let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
        if let Some(declared) = topic.replication_factor.filter(|rf| *rf != replication) {
            return Ok(TopicOutcome::Refused {
                reason: "ReplicationFactorChange",
                message: format!(
                    "topic {name} has replication factor {replication}, the spec declares {declared}: \
                     the operator does not reassign replicas; change it with Kafka's tools or declare {replication}"
                ),
            });
        }
        match topic.partitions {
            Some(declared) if declared < partitions => {
                return Ok(TopicOutcome::Refused {
                    reason: "PartitionDecrease",
                    message: format!(
                        "topic {name} has {partitions} partitions, the spec declares {declared}: \
                         Kafka cannot remove partitions; declare {partitions} or more"
                    ),
                });
            }
            Some(declared) if declared > partitions => self.add_partitions(name, declared).await?,
            _ => {}
        }
        if let Some(config) = &topic.config {
            self.apply_config(name, config).await?;
        }
        Ok(TopicOutcome::Ready { created: false })
    }

    /// Creates `topic`; `false` when someone else created it since it was described
    /// (then it is not this operator's to delete).
    async fn create(
        &self,
        topic: &TopicSpec,
        defaults: TopicDefaults,
    ) -> Result<bool, KafkaAdminError> {
        let name = topic.name.as_str();
        let mut new_topic = NewTopic::new(
            name,
            topic.partitions.unwrap_or(defaults.partitions),
            TopicReplication::Fixed(
                topic
                    .replication_factor
                    .unwrap_or(defaults.replication_factor),
            ),
        );
        for (key, value) in topic.config.iter().flatten() {
            new_topic = new_topic.set(key, value);
        }
        let results = self
            .admin
            .create_topics([&new_topic], &options())
            .await
            .map_err(|source| KafkaAdminError::Request {
                action: "creating",
                topic: name.to_owned(),
                source,
            })?;
        let raced = results
            .iter()
            .any(|r| matches!(r, Err((_, RDKafkaErrorCode::TopicAlreadyExists))));
        check_results(
            results,
            "creating",
            name,
            &[RDKafkaErrorCode::TopicAlreadyExists],
        )?;
        Ok(!raced)
    }

    async fn add_partitions(&self, name: &str, total: i32) -> Result<(), KafkaAdminError> {
        let count = usize::try_from(total).unwrap_or(usize::MAX);
        let results = self
            .admin
            .create_partitions([&NewPartitions::new(name, count)], &options())
            .await
            .map_err(|source| KafkaAdminError::Request {
                action: "adding partitions to",
                topic: name.to_owned(),
                source,
            })?;
        check_results(results, "adding partitions to", name, &[])
    }

    /// Applies the declared config when any declared value differs from the topic's.
    async fn apply_config(
        &self,
        name: &str,
        declared: &BTreeMap<String, String>,
    ) -> Result<(), KafkaAdminError> {
        let request = |source| KafkaAdminError::Request {
            action: "configuring",
            topic: name.to_owned(),
            source,
        };
        let described = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(name)], &options())
            .await
            .map_err(request)?;
        let current =
            described
                .into_iter()
                .next()
                .transpose()
                .map_err(|code| KafkaAdminError::Refused {
                    action: "describing config of",
                    topic: name.to_owned(),
                    code,
                })?;
        let differs = declared.iter().any(|(key, value)| {
            current
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(|e| e.value.as_deref())
                != Some(value)
        });
        if !differs {
            return Ok(());
        }
        // AlterConfigs sets the whole dynamic config of the topic: exactly what is declared.
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
        for (key, value) in declared {
            alter = alter.set(key, value);
        }
        let results = self
            .admin
            .alter_configs([&alter], &options())
            .await
            .map_err(request)?;
        for result in results {
            result.map_err(|(_, code)| KafkaAdminError::Refused {
                action: "configuring",
                topic: name.to_owned(),
                code,
            })?;
        }
        Ok(())
    }

    /// Deletes `topic`; a topic already gone is fine.
    ///
    /// # Errors
    /// When Kafka cannot be reached or refuses.
    pub async fn delete(&self, topic: &str) -> Result<(), KafkaAdminError> {
        let results = self
            .admin
            .delete_topics(&[topic], &options())
            .await
            .map_err(|source| KafkaAdminError::Request {
                action: "deleting",
                topic: topic.to_owned(),
                source,
            })?;
        check_results(
            results,
            "deleting",
            topic,
            &[RDKafkaErrorCode::UnknownTopicOrPartition],
        )
    }

    /// Records of `topic` not yet committed by consumer `group` (a partition the group
    /// never committed counts from its low watermark).
    ///
    /// # Errors
    /// When Kafka cannot be reached.
    pub async fn consumer_lag(&self, group: &str, topic: &str) -> Result<i64, KafkaAdminError> {
        let (bootstrap, group, topic) =
            (self.bootstrap.clone(), group.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            let request = |source| KafkaAdminError::Request {
                action: "reading lag of",
                topic: topic.clone(),
                source,
            };
            let consumer: BaseConsumer = base_config(&bootstrap)
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .create()
                .map_err(|source| KafkaAdminError::Client {
                    bootstrap: bootstrap.clone(),
                    source,
                })?;
            let metadata = consumer
                .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
                .map_err(request)?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut list = TopicPartitionList::new();
            for partition in &partitions {
                list.add_partition(&topic, *partition);
            }
            let committed = consumer
                .committed_offsets(list, REQUEST_TIMEOUT)
                .map_err(request)?;
            let mut lag = 0;
            for partition in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition, REQUEST_TIMEOUT)
                    .map_err(request)?;
                let position = match committed
                    .find_partition(&topic, partition)
                    .map(|p| p.offset())
                {
                    Some(Offset::Offset(offset)) => offset,
                    _ => low,
                };
                lag += (high - position).max(0);
            }
            Ok(lag)
        })
        .await?
    }
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        // An unreachable broker must surface as an error within one reconcile, not hang.
        .set("socket.connection.setup.timeout.ms", "5000");
    config
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT))
}

fn check_results(
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
    action: &'static str,
    topic: &str,
    accepted: &[RDKafkaErrorCode],
) -> Result<(), KafkaAdminError> {
    for result in results {
        if let Err((_, code)) = result
            && !accepted.contains(&code)
        {
            return Err(KafkaAdminError::Refused {
                action,
                topic: topic.to_owned(),
                code,
            });
        }
    }
    Ok(())
}
