//! The operator's own configuration: connection defaults that resources may override,
//! the runtime images, and topic defaults. Flags or environment (the Helm chart sets both).

mod kafka_security;

use std::time::Duration;

use clap::Args;
use homestream_crds::connection::{CassandraConnection, KafkaConnection, Sasl, Tls};
use homestream_crds::runtime::{KAFKA_TLS_DIR, ResolvedCassandra, ResolvedKafka, TlsFiles};

pub use kafka_security::KafkaSecurity;

use crate::kafka::KafkaEndpoint;

/// Operator-wide settings.
#[derive(Clone, Debug, Args)]
pub struct OperatorConfig {
    /// Default Kafka bootstrap servers, comma-separated `host:port`.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_BOOTSTRAP",
        value_delimiter = ',',
        default_value = "kafka:9092"
    )]
    pub kafka_bootstrap_servers: Vec<String>,
    /// TLS and SASL of the default brokers, and the credentials of the runtime pods and
    /// of the operator.
    #[command(flatten)]
    pub kafka_security: KafkaSecurity,
    /// Default Cassandra contact points, comma-separated `host:port`.
    #[arg(
        long,
        env = "HOMESTREAM_CASSANDRA_CONTACT_POINTS",
        value_delimiter = ',',
        default_value = "cassandra:9042"
    )]
    pub cassandra_contact_points: Vec<String>,
    /// Default Cassandra datacenter the sinks prefer.
    #[arg(long, env = "HOMESTREAM_CASSANDRA_LOCAL_DATACENTER")]
    pub cassandra_local_datacenter: Option<String>,
    /// Image of the scraper (runtime and Chromium).
    #[arg(long, env = "HOMESTREAM_SCRAPER_IMAGE", default_value = concat!("homestream-scraper:", env!("CARGO_PKG_VERSION")))]
    pub scraper_image: String,
    /// Image of the transformer (runtime for `transform` and `sink`).
    #[arg(long, env = "HOMESTREAM_TRANSFORMER_IMAGE", default_value = concat!("homestream-transformer:", env!("CARGO_PKG_VERSION")))]
    pub transformer_image: String,
    /// Partitions of a declared topic that does not say.
    #[arg(long, env = "HOMESTREAM_DEFAULT_PARTITIONS", default_value_t = 3)]
    pub default_partitions: i32,
    /// Replication factor of a declared topic that does not say.
    #[arg(
        long,
        env = "HOMESTREAM_DEFAULT_REPLICATION_FACTOR",
        default_value_t = 1
    )]
    pub default_replication_factor: i32,
    /// How often a Ready resource is looked at again (consumer lag, drift of topics and tables).
    #[arg(long, env = "HOMESTREAM_RESYNC_SECONDS", default_value_t = 30)]
    pub resync_seconds: u64,
}

impl OperatorConfig {
    /// The requeue interval of a healthy resource.
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_seconds)
    }

    /// Kafka settings with the resource's overrides applied. The TLS and SASL defaults
    /// belong to the default brokers: a resource that names its own bootstrap servers
    /// names another cluster (or listener), whose security is only what it states.
    pub fn resolve_kafka(&self, overrides: Option<&KafkaConnection>) -> KafkaSettings {
        let tls = overrides.and_then(|o| o.tls.clone());
        let sasl = overrides.and_then(|o| o.sasl.clone());
        match overrides.and_then(|o| o.bootstrap_servers.as_ref()) {
            Some(servers) => KafkaSettings {
                bootstrap_servers: servers.iter().map(ToString::to_string).collect(),
                tls,
                sasl,
            },
            None => KafkaSettings {
                bootstrap_servers: self.kafka_bootstrap_servers.clone(),
                tls: tls.or_else(|| self.kafka_security.tls()),
                sasl: sasl.or_else(|| self.kafka_security.sasl()),
            },
        }
    }

    /// Cassandra settings with the resource's overrides applied.
    pub fn resolve_cassandra(&self, overrides: Option<&CassandraConnection>) -> ResolvedCassandra {
        ResolvedCassandra {
            contact_points: overrides
                .and_then(|o| o.contact_points.as_ref())
                .map(|points| points.iter().map(ToString::to_string).collect())
                .unwrap_or_else(|| self.cassandra_contact_points.clone()),
            local_datacenter: overrides
                .and_then(|o| o.local_datacenter.clone())
                .or_else(|| self.cassandra_local_datacenter.clone()),
            authenticated: overrides.is_some_and(|o| o.credentials.is_some()),
        }
    }
}

/// A resource's Kafka connection: the operator-wide defaults with its overrides applied.
/// TLS material and credentials are Secret keys in the resource's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port` of the bootstrap brokers.
    pub bootstrap_servers: Vec<String>,
    /// TLS, with the Secret keys the runtime pods mount.
    pub tls: Option<Tls>,
    /// SASL, with the Secret keys the runtime pods read their login from.
    pub sasl: Option<Sasl>,
}

impl KafkaSettings {
    /// What the runtime is configured with: TLS files where its pods mount them.
    pub fn runtime(&self) -> ResolvedKafka {
        ResolvedKafka {
            bootstrap_servers: self.bootstrap_servers.clone(),
            tls: self
                .tls
                .as_ref()
                .map(|tls| TlsFiles::mounted(tls, KAFKA_TLS_DIR)),
            sasl_mechanism: self.sasl.as_ref().map(|sasl| sasl.mechanism),
        }
    }

    /// How the operator's admin client reaches the same brokers.
    pub fn endpoint(&self) -> KafkaEndpoint {
        KafkaEndpoint {
            bootstrap_servers: self.bootstrap_servers.clone(),
            tls: self.tls.is_some(),
            sasl: self.sasl.as_ref().map(|sasl| sasl.mechanism),
        }
    }
}
