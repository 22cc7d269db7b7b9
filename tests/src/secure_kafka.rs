//! The operator on the stack's SASL_SSL listener: its own SCRAM credential files and
//! the flags that make that listener its default brokers, for the tests of the
//! operator's Kafka security and the end-to-end pipeline over it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{StackEnv, random_name};

/// The Secret (`name/key`) the runtime pods read the stack's CA from.
pub const RUNTIME_CA_SECRET: &str = "kafka-cluster-ca/ca.crt";
/// The Secret the runtime pods read their SCRAM login from (`username`, `password`).
pub const RUNTIME_LOGIN_SECRET: &str = "homestream-kafka";

/// The operator's credential files, in a directory of their own, removed when dropped.
pub struct CredentialFiles {
    dir: PathBuf,
}

impl CredentialFiles {
    /// The stack's SCRAM user with `password`.
    ///
    /// # Errors
    /// When the files cannot be written.
    pub fn new(env: &StackEnv, password: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(random_name("operator-kafka-credentials"));
        std::fs::create_dir_all(&dir)?;
        let files = Self { dir };
        std::fs::write(files.username(), &env.kafka_secure.username)?;
        files.set_password(password)?;
        Ok(files)
    }

    /// The user name file.
    pub fn username(&self) -> PathBuf {
        self.dir.join("username")
    }

    /// The password file.
    pub fn password(&self) -> PathBuf {
        self.dir.join("password")
    }

    /// Rewrites the password file, as the kubelet does when the Secret is rotated.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn set_password(&self, password: &str) -> Result<()> {
        Ok(std::fs::write(self.password(), password)?)
    }
}

impl Drop for CredentialFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The operator's flags for the SASL_SSL listener as its default brokers: the runtime
/// pods' TLS and SASL Secrets (in each resource's namespace) and the operator's own
/// files; `ca` is the operator's CA file (`None`: the system's roots).
pub fn operator_args(env: &StackEnv, files: &CredentialFiles, ca: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        format!("--kafka-bootstrap-servers={}", env.kafka_secure.bootstrap),
        format!("--kafka-tls-ca={RUNTIME_CA_SECRET}"),
        "--kafka-sasl-mechanism=ScramSha512".to_owned(),
        format!("--kafka-sasl-username={RUNTIME_LOGIN_SECRET}/username"),
        format!("--kafka-sasl-password={RUNTIME_LOGIN_SECRET}/password"),
        format!(
            "--kafka-admin-sasl-username-file={}",
            files.username().display()
        ),
        format!(
            "--kafka-admin-sasl-password-file={}",
            files.password().display()
        ),
    ];
    args.extend(ca.map(|ca| format!("--kafka-admin-ca-file={}", ca.display())));
    args
}
