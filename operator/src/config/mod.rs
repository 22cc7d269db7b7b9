//! The operator's own configuration: connection defaults that resources may override,
//! the runtime images, and topic defaults. Flags or environment (the Helm chart sets both).

mod kafka_security;
mod s3;

use std::time::Duration;

use clap::Args;
use homestream_crds::connection::{
    CassandraConnection, KafkaConnection, S3Connection, S3Credentials, Sasl, Tls,
};
use homestream_crds::runtime::{
    KAFKA_TLS_DIR, ResolvedCassandra, ResolvedKafka, ResolvedS3, TlsFiles,
};

pub use kafka_security::KafkaSecurity;
pub use s3::S3Defaults;

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
    /// The default object storage of DeltaSinks, the runtime pods' access key and the
    /// operator's own.
    #[command(flatten)]
    pub s3: S3Defaults,
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

    /// S3 settings with the resource's overrides applied, and the access key (Secret
    /// keys in the resource's namespace) its runtime pods get, if any.
    pub fn resolve_s3(
        &self,
        overrides: Option<&S3Connection>,
    ) -> (ResolvedS3, Option<S3Credentials>) {
        self.s3.resolve(overrides)
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

/// The configuration `args` give (tests: flags only, nothing else set).
#[cfg(test)]
pub fn from_args(args: &[&str]) -> OperatorConfig {
    try_from_args(args).expect("valid flags")
}

/// The configuration `args` give, or clap's refusal.
#[cfg(test)]
pub fn try_from_args(args: &[&str]) -> Result<OperatorConfig, clap::Error> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: OperatorConfig,
    }
    let args = std::iter::once("homestream-operator").chain(args.iter().copied());
    <Cli as clap::Parser>::try_parse_from(args).map(|cli| cli.config)
}

#[cfg(test)]
mod tests {
    use homestream_crds::connection::{Credentials, SaslMechanism};
    use homestream_crds::secret::SecretKeyRef;
    use serde_json::json;

    use super::*;

    /// The flags of a cluster whose listener wants TLS (the cluster's CA) and SCRAM.
    const SECURE_DEFAULTS: &[&str] = &[
        "--kafka-bootstrap-servers=kafka-bootstrap.kafka:9093",
        "--kafka-tls-ca=cluster-ca-cert/ca.crt",
        "--kafka-sasl-mechanism=ScramSha512",
        "--kafka-sasl-username=homestream-kafka/username",
        "--kafka-sasl-password=homestream-kafka/password",
        "--kafka-admin-sasl-username-file=/etc/homestream/kafka/username",
        "--kafka-admin-sasl-password-file=/etc/homestream/kafka/password",
    ];

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    fn overrides(value: serde_json::Value) -> KafkaConnection {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn without_security_flags_the_connection_is_plaintext() {
        let config = from_args(&["--kafka-bootstrap-servers=kafka:9092"]);
        let settings = config.resolve_kafka(None);
        assert_eq!(
            settings,
            KafkaSettings {
                bootstrap_servers: vec!["kafka:9092".to_owned()],
                tls: None,
                sasl: None,
            }
        );
        assert_eq!(
            serde_json::to_value(settings.runtime()).unwrap(),
            json!({ "bootstrapServers": ["kafka:9092"] })
        );
    }

    #[test]
    fn a_resource_without_overrides_gets_the_operator_wide_security() {
        let config = from_args(SECURE_DEFAULTS);
        let settings = config.resolve_kafka(None);
        assert_eq!(
            settings.tls,
            Some(Tls {
                ca: Some(secret("cluster-ca-cert", "ca.crt")),
                certificate: None,
                key: None,
            })
        );
        assert_eq!(
            settings.sasl,
            Some(Sasl {
                mechanism: SaslMechanism::ScramSha512,
                credentials: Credentials {
                    username: secret("homestream-kafka", "username"),
                    password: secret("homestream-kafka", "password"),
                },
            })
        );
        assert_eq!(
            serde_json::to_value(settings.runtime()).unwrap(),
            json!({
                "bootstrapServers": ["kafka-bootstrap.kafka:9093"],
                "tls": { "ca": "/etc/homestream-tls/kafka/ca.crt" },
                "saslMechanism": "ScramSha512",
            })
        );
        assert_eq!(
            settings.endpoint(),
            KafkaEndpoint {
                bootstrap_servers: vec!["kafka-bootstrap.kafka:9093".to_owned()],
                tls: true,
                sasl: Some(SaslMechanism::ScramSha512),
            }
        );
    }

    #[test]
    fn each_security_field_a_resource_sets_wins_over_its_default() {
        let config = from_args(SECURE_DEFAULTS);
        let own_login = overrides(json!({
            "sasl": { "mechanism": "ScramSha256", "credentials": {
                "username": { "name": "team-a", "key": "user" },
                "password": { "name": "team-a", "key": "pass" } } }
        }));
        let settings = config.resolve_kafka(Some(&own_login));
        assert_eq!(settings.sasl, own_login.sasl, "the resource's login");
        assert_eq!(settings.tls, config.kafka_security.tls(), "the default TLS");
        assert_eq!(settings.bootstrap_servers, ["kafka-bootstrap.kafka:9093"]);

        let own_ca = overrides(json!({ "tls": { "ca": { "name": "team-ca", "key": "ca.pem" } } }));
        let settings = config.resolve_kafka(Some(&own_ca));
        assert_eq!(settings.tls, own_ca.tls, "the resource's CA");
        assert_eq!(
            settings.sasl,
            config.kafka_security.sasl(),
            "the default login"
        );
    }

    #[test]
    fn a_resource_naming_other_brokers_gets_only_the_security_it_states() {
        let config = from_args(SECURE_DEFAULTS);
        let elsewhere = overrides(json!({ "bootstrapServers": ["legacy-kafka:9092"] }));
        assert_eq!(
            config.resolve_kafka(Some(&elsewhere)),
            KafkaSettings {
                bootstrap_servers: vec!["legacy-kafka:9092".to_owned()],
                tls: None,
                sasl: None,
            },
            "the defaults describe the default brokers, not these"
        );
        let secured_elsewhere = overrides(json!({
            "bootstrapServers": ["other-kafka:9093"],
            "tls": {}
        }));
        let settings = config.resolve_kafka(Some(&secured_elsewhere));
        assert_eq!(
            settings.endpoint(),
            KafkaEndpoint {
                bootstrap_servers: vec!["other-kafka:9093".to_owned()],
                tls: true,
                sasl: None,
            },
            "the operator speaks what the resource states, with its own credentials"
        );
    }
}
