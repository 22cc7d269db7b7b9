//! Operator-wide Kafka security: how the default brokers are secured (TLS, a SASL
//! mechanism), where the runtime pods find their TLS material and SASL credentials
//! (Secret keys, looked up in each resource's own namespace: a pod can mount only
//! Secrets of its namespace), and where the operator finds its own credentials (files).

use clap::Args;
use homestream_crds::connection::{Credentials, Sasl, SaslMechanism, Tls};
use homestream_crds::secret::SecretKeyRef;
use serde::Deserialize as _;
use serde::de::IntoDeserializer as _;

use crate::kafka::credentials::AdminCredentialFiles;

/// Security of the default Kafka brokers.
#[derive(Clone, Debug, Default, Args)]
pub struct KafkaSecurity {
    /// TLS to the default brokers, with the system's trusted roots unless
    /// --kafka-tls-ca names a CA. Implied by any --kafka-tls-* Secret.
    #[arg(long, env = "HOMESTREAM_KAFKA_TLS")]
    pub kafka_tls: bool,
    /// CA bundle (PEM) the runtime pods trust for the default brokers, as
    /// `secret/key` of a Secret in each resource's namespace.
    #[arg(long, env = "HOMESTREAM_KAFKA_TLS_CA", value_parser = secret_key_ref)]
    pub kafka_tls_ca: Option<SecretKeyRef>,
    /// Client certificate (PEM) of the runtime pods for mutual TLS, `secret/key` in
    /// each resource's namespace.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_TLS_CERTIFICATE",
        value_parser = secret_key_ref,
        requires = "kafka_tls_key"
    )]
    pub kafka_tls_certificate: Option<SecretKeyRef>,
    /// Client private key (PEM) of the runtime pods for mutual TLS, `secret/key` in
    /// each resource's namespace.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_TLS_KEY",
        value_parser = secret_key_ref,
        requires = "kafka_tls_certificate"
    )]
    pub kafka_tls_key: Option<SecretKeyRef>,
    /// SASL mechanism of the default brokers: `Plain`, `ScramSha256` or `ScramSha512`.
    /// The runtime pods log in with --kafka-sasl-username/--kafka-sasl-password, the
    /// operator with its own --kafka-admin-sasl-*-file.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_SASL_MECHANISM",
        value_parser = sasl_mechanism,
        requires_all = [
            "kafka_sasl_username",
            "kafka_sasl_password",
            "kafka_admin_sasl_username_file",
            "kafka_admin_sasl_password_file",
        ]
    )]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name of the runtime pods, `secret/key` in each resource's namespace.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_SASL_USERNAME",
        value_parser = secret_key_ref,
        requires = "kafka_sasl_mechanism"
    )]
    pub kafka_sasl_username: Option<SecretKeyRef>,
    /// SASL password of the runtime pods, `secret/key` in each resource's namespace.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_SASL_PASSWORD",
        value_parser = secret_key_ref,
        requires = "kafka_sasl_mechanism"
    )]
    pub kafka_sasl_password: Option<SecretKeyRef>,
    /// The operator's own credentials.
    #[command(flatten)]
    pub admin: AdminCredentialFiles,
}

impl KafkaSecurity {
    /// The runtime pods' TLS to the default brokers, when on.
    pub fn tls(&self) -> Option<Tls> {
        let tls = Tls {
            ca: self.kafka_tls_ca.clone(),
            certificate: self.kafka_tls_certificate.clone(),
            key: self.kafka_tls_key.clone(),
        };
        let names_a_secret = tls.ca.is_some() || tls.certificate.is_some();
        (self.kafka_tls || names_a_secret).then_some(tls)
    }

    /// The runtime pods' SASL login to the default brokers, when on.
    pub fn sasl(&self) -> Option<Sasl> {
        Some(Sasl {
            mechanism: self.kafka_sasl_mechanism?,
            credentials: Credentials {
                username: self.kafka_sasl_username.clone()?,
                password: self.kafka_sasl_password.clone()?,
            },
        })
    }
}

/// Parses `secret/key` (neither a Secret's name nor a key may contain `/`).
pub(super) fn secret_key_ref(text: &str) -> Result<SecretKeyRef, String> {
    match text.split_once('/') {
        Some((name, key)) if !name.is_empty() && !key.is_empty() && !key.contains('/') => {
            Ok(SecretKeyRef {
                name: name.to_owned(),
                key: key.to_owned(),
            })
        }
        _ => Err(format!(
            "`{text}` is not `secret/key` (a Secret's name and one of its keys)"
        )),
    }
}

/// Parses a mechanism by the name the CRDs use (`ScramSha512`).
fn sasl_mechanism(text: &str) -> Result<SaslMechanism, String> {
    SaslMechanism::deserialize(text.into_deserializer())
        .map_err(|error: serde::de::value::Error| error.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        security: KafkaSecurity,
    }

    fn parse(args: &[&str]) -> Result<KafkaSecurity, clap::Error> {
        Cli::try_parse_from(std::iter::once("operator").chain(args.iter().copied()))
            .map(|cli| cli.security)
    }

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    #[test]
    fn nothing_set_is_plaintext_without_sasl() {
        let security = parse(&[]).unwrap();
        assert_eq!((security.tls(), security.sasl()), (None, None));
    }

    #[test]
    fn tls_secrets_imply_tls_and_the_system_roots_need_only_the_flag() {
        let roots = parse(&["--kafka-tls"]).unwrap();
        assert_eq!(
            roots.tls(),
            Some(Tls {
                ca: None,
                certificate: None,
                key: None
            })
        );
        let mutual = parse(&[
            "--kafka-tls-ca=cluster-ca-cert/ca.crt",
            "--kafka-tls-certificate=homestream/user.crt",
            "--kafka-tls-key=homestream/user.key",
        ])
        .unwrap();
        assert_eq!(
            mutual.tls(),
            Some(Tls {
                ca: Some(secret("cluster-ca-cert", "ca.crt")),
                certificate: Some(secret("homestream", "user.crt")),
                key: Some(secret("homestream", "user.key")),
            })
        );
        let error = parse(&["--kafka-tls-certificate=homestream/user.crt"]).unwrap_err();
        assert!(error.to_string().contains("--kafka-tls-key"), "{error}");
    }

    #[test]
    fn sasl_needs_the_pods_and_the_operators_credentials() {
        let security = parse(&[
            "--kafka-sasl-mechanism=ScramSha512",
            "--kafka-sasl-username=kafka-user/username",
            "--kafka-sasl-password=kafka-user/password",
            "--kafka-admin-sasl-username-file=/etc/homestream/kafka/username",
            "--kafka-admin-sasl-password-file=/etc/homestream/kafka/password",
        ])
        .unwrap();
        assert_eq!(
            security.sasl(),
            Some(Sasl {
                mechanism: SaslMechanism::ScramSha512,
                credentials: Credentials {
                    username: secret("kafka-user", "username"),
                    password: secret("kafka-user", "password"),
                },
            })
        );
        let error = parse(&[
            "--kafka-sasl-mechanism=ScramSha512",
            "--kafka-sasl-username=kafka-user/username",
            "--kafka-sasl-password=kafka-user/password",
        ])
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--kafka-admin-sasl-username-file"),
            "{error}"
        );
        let error = parse(&["--kafka-sasl-mechanism=Scram"]).unwrap_err();
        assert!(error.to_string().contains("ScramSha512"), "{error}");
    }

    #[test]
    fn a_secret_reference_is_secret_slash_key() {
        assert_eq!(
            secret_key_ref("kafka-user/sasl.password"),
            Ok(secret("kafka-user", "sasl.password"))
        );
        for bad in ["kafka-user", "/key", "name/", "a/b/c"] {
            assert!(secret_key_ref(bad).is_err(), "{bad}");
        }
    }
}
