//! The operator's own Kafka credentials: PEM files and a SASL user name and password,
//! each a file (the Helm chart mounts them from a Secret in the operator's namespace;
//! they never pass through flags, environment values or logs). They are read on every
//! use, so a rotated Secret reaches the admin client without a restart.

use std::path::{Path, PathBuf};

use clap::Args;
use homestream_common::kafka::SaslLogin;
use homestream_crds::connection::SaslMechanism;
use homestream_crds::runtime::TlsFiles;

/// Where the operator finds its own Kafka credentials.
#[derive(Clone, Debug, Default, Args)]
pub struct AdminCredentialFiles {
    /// The operator's CA bundle (PEM file) for the brokers' certificates, used when the
    /// cluster's settings ask for TLS. Unset: the system's trusted roots.
    #[arg(long, env = "HOMESTREAM_KAFKA_ADMIN_CA_FILE")]
    pub kafka_admin_ca_file: Option<PathBuf>,
    /// The operator's client certificate (PEM file), for mutual TLS.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_ADMIN_CERTIFICATE_FILE",
        requires = "kafka_admin_key_file"
    )]
    pub kafka_admin_certificate_file: Option<PathBuf>,
    /// The operator's client private key (PEM file), for mutual TLS.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_ADMIN_KEY_FILE",
        requires = "kafka_admin_certificate_file"
    )]
    pub kafka_admin_key_file: Option<PathBuf>,
    /// File holding the operator's SASL user name, used when the cluster's settings ask
    /// for SASL.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_ADMIN_SASL_USERNAME_FILE",
        requires = "kafka_admin_sasl_password_file"
    )]
    pub kafka_admin_sasl_username_file: Option<PathBuf>,
    /// File holding the operator's SASL password.
    #[arg(
        long,
        env = "HOMESTREAM_KAFKA_ADMIN_SASL_PASSWORD_FILE",
        requires = "kafka_admin_sasl_username_file"
    )]
    pub kafka_admin_sasl_password_file: Option<PathBuf>,
}

/// A credential file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read.
    #[error("reading the operator's Kafka credential file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The cluster asks for SASL and the operator has no user name and password.
    #[error(
        "the Kafka cluster's settings ask for SASL ({mechanism:?}) but the operator has no credentials \
         (--kafka-admin-sasl-username-file and --kafka-admin-sasl-password-file)"
    )]
    NoSaslLogin {
        /// The mechanism asked for.
        mechanism: SaslMechanism,
    },
}

/// The credentials as read: what the admin client is built from, and what tells a
/// rotated Secret from an unchanged one.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    tls: TlsFiles,
    /// The content of each TLS file (librdkafka reads the files themselves when a client
    /// is created; a change means a new client).
    tls_contents: Vec<Vec<u8>>,
    login: Option<(String, String)>,
}

impl AdminCredentialFiles {
    /// Reads every configured file.
    ///
    /// # Errors
    /// When a file cannot be read.
    pub fn read(&self) -> Result<AdminCredentials, CredentialsError> {
        let tls = TlsFiles {
            ca: self.kafka_admin_ca_file.as_deref().map(path_text),
            certificate: self.kafka_admin_certificate_file.as_deref().map(path_text),
            key: self.kafka_admin_key_file.as_deref().map(path_text),
        };
        let tls_contents = [
            &self.kafka_admin_ca_file,
            &self.kafka_admin_certificate_file,
            &self.kafka_admin_key_file,
        ]
        .into_iter()
        .flatten()
        .map(|path| read(path))
        .collect::<Result<_, _>>()?;
        let login = match (
            &self.kafka_admin_sasl_username_file,
            &self.kafka_admin_sasl_password_file,
        ) {
            (Some(username), Some(password)) => {
                Some((secret_text(username)?, secret_text(password)?))
            }
            _ => None,
        };
        Ok(AdminCredentials {
            tls,
            tls_contents,
            login,
        })
    }
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("AdminCredentials")
            .field("tls", &self.tls)
            .field(
                "username",
                &self.login.as_ref().map(|(username, _)| username),
            )
            .finish_non_exhaustive()
    }
}

impl AdminCredentials {
    /// The TLS files the admin client uses.
    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// The SASL login for `mechanism`.
    ///
    /// # Errors
    /// When no user name and password are configured.
    pub fn login(&self, mechanism: SaslMechanism) -> Result<SaslLogin, CredentialsError> {
        let (username, password) = self
            .login
            .clone()
            .ok_or(CredentialsError::NoSaslLogin { mechanism })?;
        Ok(SaslLogin {
            mechanism,
            username,
            password,
        })
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn read(path: &Path) -> Result<Vec<u8>, CredentialsError> {
    std::fs::read(path).map_err(|source| CredentialsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A user name or password file's text without the trailing newline an editor or
/// `echo` leaves (a Secret created with `--from-literal` has none).
fn secret_text(path: &Path) -> Result<String, CredentialsError> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "homestream-credentials-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn files_are_read_and_a_rotated_password_is_a_change() {
        let dir = temp_dir();
        let (ca, username, password) = (dir.join("ca.crt"), dir.join("user"), dir.join("pass"));
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::write(&username, "operator\n").unwrap();
        std::fs::write(&password, "first").unwrap();
        let files = AdminCredentialFiles {
            kafka_admin_ca_file: Some(ca.clone()),
            kafka_admin_sasl_username_file: Some(username),
            kafka_admin_sasl_password_file: Some(password.clone()),
            ..AdminCredentialFiles::default()
        };
        let first = files.read().unwrap();
        assert_eq!(first.tls().ca.as_deref(), ca.to_str());
        let login = first.login(SaslMechanism::ScramSha512).unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("operator", "first"),
            "the trailing newline is not part of the user name"
        );
        assert_eq!(
            files.read().unwrap(),
            first,
            "unchanged files, same credentials"
        );
        std::fs::write(&password, "second").unwrap();
        assert_ne!(
            files.read().unwrap(),
            first,
            "a rotated password is a change"
        );
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nrotated\n").unwrap();
        assert_ne!(files.read().unwrap(), first, "a rotated CA is a change");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_file_or_login_is_an_error_naming_it() {
        let files = AdminCredentialFiles {
            kafka_admin_ca_file: Some(PathBuf::from("/nonexistent/ca.crt")),
            ..AdminCredentialFiles::default()
        };
        let error = files.read().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/ca.crt"), "{error}");
        let none = AdminCredentialFiles::default().read().unwrap();
        let error = none
            .login(SaslMechanism::ScramSha512)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--kafka-admin-sasl-password-file"),
            "{error}"
        );
    }
}
