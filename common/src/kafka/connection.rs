//! How a client connects: brokers, TLS from PEM files and SASL credentials from the
//! environment. The runtime's clients and the operator's admin client share it, so
//! both speak to a listener the same way.

use rdkafka::ClientConfig;

use homestream_crds::connection::SaslMechanism;
use homestream_crds::runtime::{KAFKA_PASSWORD_ENV, KAFKA_USERNAME_ENV, ResolvedKafka, TlsFiles};

/// How often librdkafka reports statistics, from which the lag gauge is set.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// A connection setting that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// SASL is configured but a credential variable is missing.
    #[error("kafka.saslMechanism is set but the environment variable {variable} is not")]
    MissingCredential {
        /// The variable the Secret should have set.
        variable: &'static str,
    },
}

/// Base client settings: brokers, TLS (PEM files; the broker's name is verified
/// against its certificate) and SASL (credentials from the environment).
///
/// # Errors
/// When SASL is configured and a credential variable is missing.
pub fn client_config(kafka: &ResolvedKafka) -> Result<ClientConfig, ConnectionError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka.bootstrap_servers.join(","));
    config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    let credential = |variable: &'static str| {
        std::env::var(variable).map_err(|_| ConnectionError::MissingCredential { variable })
    };
    let sasl = match kafka.sasl_mechanism {
        Some(mechanism) => Some(SaslLogin {
            mechanism,
            username: credential(KAFKA_USERNAME_ENV)?,
            password: credential(KAFKA_PASSWORD_ENV)?,
        }),
        None => None,
    };
    secure(&mut config, kafka.tls.as_ref(), sasl.as_ref());
    Ok(config)
}

/// A SASL login: the mechanism and the credentials to present.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslLogin {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Sets `security.protocol` and the TLS and SASL settings of a client: TLS from PEM
/// files (without a CA of its own, the system's roots), SASL with `sasl`'s login. The
/// runtime's clients and the operator's admin client share it, so both speak to a
/// listener the same way.
pub fn secure(config: &mut ClientConfig, tls: Option<&TlsFiles>, sasl: Option<&SaslLogin>) {
    let protocol = match (tls.is_some(), sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    config.set("security.protocol", protocol);
    if let Some(tls) = tls {
        // Without a CA of its own, the system's roots, wherever this system keeps them.
        config.set("ssl.ca.location", tls.ca.as_deref().unwrap_or("probe"));
        if let (Some(certificate), Some(key)) = (&tls.certificate, &tls.key) {
            config
                .set("ssl.certificate.location", certificate)
                .set("ssl.key.location", key);
        }
    }
    if let Some(login) = sasl {
        config
            .set(
                "sasl.mechanism",
                match login.mechanism {
                    SaslMechanism::Plain => "PLAIN",
                    SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                    SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
                },
            )
            .set("sasl.username", &login.username)
            .set("sasl.password", &login.password);
    }
}
