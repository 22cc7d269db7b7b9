//! The operator's own configuration: connection defaults that resources may override,
//! the runtime images, and topic defaults. Flags or environment (the Helm chart sets both).

use std::time::Duration;

use clap::Args;
use homestream_crds::connection::{CassandraConnection, KafkaConnection};
use homestream_crds::runtime::{KAFKA_TLS_DIR, ResolvedCassandra, ResolvedKafka, TlsFiles};

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

    /// Kafka settings with the resource's overrides applied.
    pub fn resolve_kafka(&self, overrides: Option<&KafkaConnection>) -> ResolvedKafka {
        let bootstrap_servers = overrides
            .and_then(|o| o.bootstrap_servers.as_ref())
            .map(|servers| servers.iter().map(ToString::to_string).collect())
            .unwrap_or_else(|| self.kafka_bootstrap_servers.clone());
        ResolvedKafka {
            bootstrap_servers,
            tls: overrides
                .and_then(|o| o.tls.as_ref())
                .map(|tls| TlsFiles::mounted(tls, KAFKA_TLS_DIR)),
            sasl_mechanism: overrides.and_then(|o| o.sasl.as_ref()).map(|s| s.mechanism),
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
