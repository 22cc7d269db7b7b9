//! Kafka topics as resources declare them: created when missing, partitions raised,
//! config applied; a partition decrease or replication change is refused (Kafka cannot
//! do either safely) and reported, never retried in a loop. Also reads consumer lag.
//!
//! The admin client speaks the protocol a resource's resolved settings ask for (TLS,
//! SASL mechanism) with the operator's own credentials ([`credentials`]).

mod connection;
pub mod credentials;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use homestream_common::kafka::secure;
use homestream_crds::connection::SaslMechanism;
use homestream_crds::topic::TopicSpec;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use connection::MetadataClient;
pub use connection::{ConnectionFailure, FailureKind};
use credentials::{AdminCredentials, CredentialsError};

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
    /// The operator's credentials cannot be used.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The metadata of a topic could not be read: the first request of every reconcile,
    /// the one that finds out whether the brokers can be used at all.
    #[error("describing topic {topic}: {source}{}", failure.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Metadata {
        /// The topic.
        topic: String,
        /// The cause.
        source: KafkaError,
        /// Why the connection failed, when librdkafka said (a refused login or TLS
        /// handshake only ever shows as a transport failure or timeout otherwise).
        failure: Option<Box<ConnectionFailure>>,
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

impl KafkaAdminError {
    /// The CamelCase reason of the condition that reports this failure.
    pub fn reason(&self) -> &'static str {
        self.classify().0
    }

    /// What the failure means for Kafka at `bootstrap`, then the error itself.
    pub fn describe(&self, bootstrap: &str) -> String {
        format!("Kafka at {bootstrap} {}: {self}", self.classify().1)
    }

    /// The reason and its meaning: the operator's credentials, a refused login, a failed
    /// TLS handshake, or Kafka simply unreachable.
    fn classify(&self) -> (&'static str, &'static str) {
        match (self, self.connection_failure()) {
            (Self::Credentials(_), _) => (
                "KafkaCredentialsUnusable",
                "cannot be used with the operator's credentials",
            ),
            (_, Some(FailureKind::Authentication)) => (
                "KafkaAuthenticationFailed",
                "refused the operator's SASL login",
            ),
            (_, Some(FailureKind::Tls)) => (
                "KafkaTlsFailed",
                "failed the TLS handshake with the operator",
            ),
            _ => ("KafkaUnavailable", "is unreachable"),
        }
    }

    fn connection_failure(&self) -> Option<FailureKind> {
        match self {
            Self::Metadata {
                failure: Some(failure),
                ..
            } => Some(failure.kind),
            _ => None,
        }
    }
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

/// A cluster as the operator reaches it: the servers, and the protocol the resource's
/// resolved settings ask for (the operator brings its own credentials).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KafkaEndpoint {
    /// `host:port` of the bootstrap brokers.
    pub bootstrap_servers: Vec<String>,
    /// Whether the listener wants TLS.
    pub tls: bool,
    /// The SASL mechanism the listener wants, if any.
    pub sasl: Option<SaslMechanism>,
}

/// An admin client for one cluster.
#[derive(Clone)]
pub struct KafkaAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    metadata: MetadataClient,
    /// The client settings, for the short-lived consumers that read lag (it holds the
    /// password: never logged).
    config: ClientConfig,
    bootstrap: String,
}

impl KafkaAdmin {
    /// Connects lazily to `endpoint` with `credentials`.
    ///
    /// # Errors
    /// When the endpoint asks for SASL and the operator has no login, or librdkafka
    /// refuses the configuration.
    pub fn new(
        endpoint: &KafkaEndpoint,
        credentials: &AdminCredentials,
    ) -> Result<Self, KafkaAdminError> {
        let bootstrap = endpoint.bootstrap_servers.join(",");
        let login = endpoint
            .sasl
            .map(|mechanism| credentials.login(mechanism))
            .transpose()?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &bootstrap)
            .set("socket.timeout.ms", "10000")
            // An unreachable broker must surface as an error within one reconcile, not hang.
            .set("socket.connection.setup.timeout.ms", "5000");
        secure(
            &mut config,
            endpoint.tls.then(|| credentials.tls()),
            login.as_ref(),
        );
        let client_error = |source| KafkaAdminError::Client {
            bootstrap: bootstrap.clone(),
            source,
        };
        let admin = config.create().map_err(client_error)?;
        let metadata = MetadataClient::new(&config).map_err(client_error)?;
        Ok(Self {
            admin: Arc::new(admin),
            metadata,
            config,
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
        let client = self.metadata.clone();
        let name = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata = client
                .fetch(&name, REQUEST_TIMEOUT)
                .map_err(|(source, failure)| KafkaAdminError::Metadata {
                    topic: name.clone(),
                    source,
                    failure: failure.map(Box::new),
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
            .map_err(|source| request_error("creating", name, source))?;
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
            .map_err(|source| request_error("adding partitions to", name, source))?;
        check_results(results, "adding partitions to", name, &[])
    }

    /// Applies the declared config when any declared value differs from the topic's.
    async fn apply_config(
        &self,
        name: &str,
        declared: &BTreeMap<String, String>,
    ) -> Result<(), KafkaAdminError> {
        let request = |source| request_error("configuring", name, source);
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
            .map_err(|source| request_error("deleting", topic, source))?;
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
        let (mut config, bootstrap, group, topic) = (
            self.config.clone(),
            self.bootstrap.clone(),
            group.to_owned(),
            topic.to_owned(),
        );
        tokio::task::spawn_blocking(move || {
            let request = |source| request_error("reading lag of", &topic, source);
            let consumer: BaseConsumer = config
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

/// A failed request other than the metadata one (by then the connection is known to
/// work).
fn request_error(action: &'static str, topic: &str, source: KafkaError) -> KafkaAdminError {
    KafkaAdminError::Request {
        action,
        topic: topic.to_owned(),
        source,
    }
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
