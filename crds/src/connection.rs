//! Per-resource overrides of the operator-wide Kafka and Cassandra connection settings.
//! Credentials are always Secret references.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::string_format;
use crate::secret::SecretKeyRef;

string_format! {
    /// A `host:port` address.
    HostPort,
    max_length = 255,
    rules = [(
        "self.matches('^[A-Za-z0-9.-]+:[0-9]{1,5}$')",
        "must be host:port"
    )]
}

/// Kafka connection settings for this resource; unset fields take the operator's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConnection {
    /// Bootstrap brokers, `host:port`, 1 to 16. Other brokers than the operator's
    /// default ones: the operator-wide TLS and SASL defaults do not apply to them, only
    /// the `tls` and `sasl` set here.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub bootstrap_servers: Option<Vec<HostPort>>,
    /// TLS to the brokers. Unset: the operator-wide default, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// SASL authentication to the brokers. Unset: the operator-wide default, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl: Option<Sasl>,
}

/// Cassandra connection settings for this resource; unset fields take the operator's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraConnection {
    /// Contact points, `host:port`, 1 to 16.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub contact_points: Option<Vec<HostPort>>,
    /// The datacenter the sink prefers (token- and DC-aware routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub local_datacenter: Option<String>,
    /// User name and password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// TLS to the nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// TLS settings. An empty object means TLS with the system's trusted roots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.certificate) == has(self.key)")
    .message("tls.certificate and tls.key go together"))]
pub struct Tls {
    /// CA bundle (PEM) that signs the server certificates. Unset: the system's trusted roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretKeyRef>,
    /// Client certificate (PEM), for mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<SecretKeyRef>,
    /// Client private key (PEM), for mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretKeyRef>,
}

/// SASL authentication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sasl {
    /// Mechanism: `Plain`, `ScramSha256` or `ScramSha512`.
    pub mechanism: SaslMechanism,
    /// User name and password.
    pub credentials: Credentials,
}

/// SASL mechanisms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum SaslMechanism {
    /// `PLAIN` (use it only over TLS).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

/// A user name and password, each from a Secret key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// Secret key holding the user name.
    pub username: SecretKeyRef,
    /// Secret key holding the password.
    pub password: SecretKeyRef,
}

string_format! {
    /// The endpoint of an S3-compatible service: `http(s)://host[:port]`, no path.
    S3Endpoint,
    max_length = 255,
    rules = [(
        "self.matches('^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$')",
        "must be http(s)://host[:port]"
    )]
}

/// S3 connection settings for this resource; unset fields take the operator's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Connection {
    /// Endpoint of an S3-compatible service (MinIO, versitygw, Ceph, R2...). Unset
    /// (and no operator default): AWS S3 in `region`. An `http://` endpoint is
    /// plaintext: only for a service inside the cluster network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<S3Endpoint>,
    /// Region of the bucket, e.g. `eu-west-2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted
    /// (`bucket.endpoint/key`): what most S3-compatible services want.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Access key id and secret. Unset: the operator's default, else the pod's
    /// ambient AWS credentials (IRSA, instance profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<S3Credentials>,
}

/// An S3 access key, each part from a Secret key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    /// Secret key holding the access key id.
    pub access_key_id: SecretKeyRef,
    /// Secret key holding the secret access key.
    pub secret_access_key: SecretKeyRef,
}
