//! The configuration a runtime process reads: the resource's spec exactly as the user
//! wrote it, plus the connection settings the operator resolved (its defaults merged
//! with the resource's overrides). The operator writes it as YAML into a ConfigMap key
//! ([`CONFIG_KEY`]) mounted at [`CONFIG_DIR`]; credentials never go there: they reach
//! the pod as environment variables from Secrets, named by the functions below.

use serde::{Deserialize, Serialize};

use crate::connection::{SaslMechanism, Tls};
use crate::secret::SecretKeyRef;
use crate::topic::TopicInput;

/// The ConfigMap key (and file name) of the runtime configuration.
pub const CONFIG_KEY: &str = "config.yaml";
/// Where the runtime's ConfigMap is mounted in the pod.
pub const CONFIG_DIR: &str = "/etc/homestream";
/// Environment variable holding the Kafka SASL user name (from a Secret).
pub const KAFKA_USERNAME_ENV: &str = "HOMESTREAM_KAFKA_USERNAME";
/// Environment variable holding the Kafka SASL password (from a Secret).
pub const KAFKA_PASSWORD_ENV: &str = "HOMESTREAM_KAFKA_PASSWORD";
/// Environment variable holding the Cassandra user name (from a Secret).
pub const CASSANDRA_USERNAME_ENV: &str = "HOMESTREAM_CASSANDRA_USERNAME";
/// Environment variable holding the Cassandra password (from a Secret).
pub const CASSANDRA_PASSWORD_ENV: &str = "HOMESTREAM_CASSANDRA_PASSWORD";
/// Environment variable holding the S3 access key id (from a Secret).
pub const S3_ACCESS_KEY_ID_ENV: &str = "HOMESTREAM_S3_ACCESS_KEY_ID";
/// Environment variable holding the S3 secret access key (from a Secret).
pub const S3_SECRET_ACCESS_KEY_ENV: &str = "HOMESTREAM_S3_SECRET_ACCESS_KEY";

/// What a runtime process is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig<Spec> {
    /// The resource this process runs for.
    pub resource: ResourceIdentity,
    /// The resource's spec, as the user wrote it.
    pub spec: Spec,
    /// Resolved Kafka connection.
    pub kafka: ResolvedKafka,
    /// Resolved Cassandra connection (CassandraSinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<ResolvedCassandra>,
    /// Resolved S3 connection (DeltaSinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<ResolvedS3>,
}

/// Identity of the resource, for consumer groups, transactional ids and record metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceIdentity {
    /// Kind: `ScrapeJob`, `StreamTransform`, `CassandraSink` or `DeltaSink`.
    pub kind: String,
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
    /// `metadata.generation` the configuration was built from.
    pub generation: i64,
}

/// Kafka connection settings after defaults and overrides were merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvedKafka {
    /// `host:port` of the bootstrap brokers.
    pub bootstrap_servers: Vec<String>,
    /// TLS to the brokers, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// SASL mechanism; the credentials come from [`KAFKA_USERNAME_ENV`] and [`KAFKA_PASSWORD_ENV`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<SaslMechanism>,
}

/// Where a runtime finds its TLS material: PEM files, which the operator mounts from
/// the Secrets the resource names (under [`KAFKA_TLS_DIR`]). No CA means the system's
/// trusted roots; a certificate and key mean mutual TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    /// CA bundle that signs the server certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Client private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl TlsFiles {
    /// The files of `tls` as mounted under `dir`.
    pub fn mounted(tls: &Tls, dir: &str) -> Self {
        let path = |secret: &Option<SecretKeyRef>, file_name: &str| {
            secret.as_ref().map(|_| format!("{dir}/{file_name}"))
        };
        Self {
            ca: path(&tls.ca, TLS_CA_FILE),
            certificate: path(&tls.certificate, TLS_CERTIFICATE_FILE),
            key: path(&tls.key, TLS_KEY_FILE),
        }
    }
}

/// Each Secret key that `tls` names, with the file name it is mounted as.
pub fn tls_secret_files(tls: &Tls) -> impl Iterator<Item = (&SecretKeyRef, &'static str)> {
    [
        (tls.ca.as_ref(), TLS_CA_FILE),
        (tls.certificate.as_ref(), TLS_CERTIFICATE_FILE),
        (tls.key.as_ref(), TLS_KEY_FILE),
    ]
    .into_iter()
    .filter_map(|(secret, file_name)| secret.map(|secret| (secret, file_name)))
}

/// Where the operator mounts a resource's Kafka TLS Secrets in its pods.
pub const KAFKA_TLS_DIR: &str = "/etc/homestream-tls/kafka";
/// File names under [`KAFKA_TLS_DIR`] of the CA, client certificate and client key.
pub const TLS_CA_FILE: &str = "ca.crt";
/// See [`TLS_CA_FILE`].
pub const TLS_CERTIFICATE_FILE: &str = "tls.crt";
/// See [`TLS_CA_FILE`].
pub const TLS_KEY_FILE: &str = "tls.key";

/// Cassandra connection settings after defaults and overrides were merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvedCassandra {
    /// `host:port` contact points.
    pub contact_points: Vec<String>,
    /// Preferred datacenter for routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_datacenter: Option<String>,
    /// Whether the credentials are set ([`CASSANDRA_USERNAME_ENV`], [`CASSANDRA_PASSWORD_ENV`]).
    #[serde(default)]
    pub authenticated: bool,
}

/// S3 connection settings after defaults and overrides were merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvedS3 {
    /// Endpoint of an S3-compatible service; unset: AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style requests.
    #[serde(default)]
    pub path_style: bool,
    /// Whether the access key is set ([`S3_ACCESS_KEY_ID_ENV`], [`S3_SECRET_ACCESS_KEY_ENV`]);
    /// otherwise the process's ambient AWS credentials apply.
    #[serde(default)]
    pub authenticated: bool,
}

impl ResourceIdentity {
    /// The consumer group of a resource reading `input`: the declared one, else
    /// `homestream.<namespace>.<name>`. The operator reads its lag, the runtime joins it.
    pub fn consumer_group(&self, input: &TopicInput) -> String {
        input.consumer_group.as_ref().map_or_else(
            || format!("homestream.{}.{}", self.namespace, self.name),
            ToString::to_string,
        )
    }
}

/// The environment variable through which the value of a Secret key reaches the pod
/// (for example an API key used in a ScrapeJob header). The operator sets it from the
/// Secret; the runtime reads it by the same name.
pub fn secret_env_var(secret: &SecretKeyRef) -> String {
    let sanitized: String = format!("{}_{}", secret.name, secret.key)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("HOMESTREAM_SECRET_{sanitized}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_env_var_is_a_valid_variable_name() {
        let secret = SecretKeyRef {
            name: "realtor-api".into(),
            key: "x-api.key".into(),
        };
        assert_eq!(
            secret_env_var(&secret),
            "HOMESTREAM_SECRET_REALTOR_API_X_API_KEY"
        );
    }
}
