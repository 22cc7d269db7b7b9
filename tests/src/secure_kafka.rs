//! The operator on the stack's secured listeners (SASL_SSL, and SSL with client
//! certificates): its own credential files, the flags that make a listener its default
//! brokers, the Secrets its runtime pods read, and the runtimes' own connections to
//! each listener with the ways the brokers refuse them, for the tests of Kafka
//! security and the end-to-end pipeline over each listener.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use homestream_crds::connection::SaslMechanism;
use homestream_crds::runtime::{ResolvedKafka, TlsFiles};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

use crate::{StackEnv, random_name};

/// The Secret the runtime pods read the stack's CA from, and its key.
pub const RUNTIME_CA_SECRET: (&str, &str) = ("kafka-cluster-ca", "ca.crt");
/// The Secret the runtime pods read their SCRAM login from (`username`, `password`).
pub const RUNTIME_LOGIN_SECRET: &str = "homestream-kafka";
/// The Secret with the runtime pods' client certificate and key (`user.crt`,
/// `user.key`, as Strimzi's User Operator names them).
pub const RUNTIME_CERTIFICATE_SECRET: &str = "homestream-kafka-tls";

/// A Secret's name and string data.
pub type SecretData = (&'static str, BTreeMap<String, String>);

/// The CA Secret of the runtime pods.
///
/// # Errors
/// When the stack's CA file cannot be read.
pub fn ca_secret(env: &StackEnv) -> Result<SecretData> {
    let (name, key) = RUNTIME_CA_SECRET;
    let ca = std::fs::read_to_string(&env.kafka_secure.ca_file)?;
    Ok((name, BTreeMap::from([(key.to_owned(), ca)])))
}

/// The SCRAM login Secret of the runtime pods.
pub fn login_secret(env: &StackEnv) -> SecretData {
    (
        RUNTIME_LOGIN_SECRET,
        BTreeMap::from([
            ("username".to_owned(), env.kafka_secure.username.clone()),
            ("password".to_owned(), env.kafka_secure.password.clone()),
        ]),
    )
}

/// The client certificate Secret of the runtime pods.
///
/// # Errors
/// When the stack's client certificate or key cannot be read.
pub fn certificate_secret(env: &StackEnv) -> Result<SecretData> {
    let client = &env.kafka_mutual_tls;
    Ok((
        RUNTIME_CERTIFICATE_SECRET,
        BTreeMap::from([
            (
                "user.crt".to_owned(),
                std::fs::read_to_string(&client.certificate_file)?,
            ),
            (
                "user.key".to_owned(),
                std::fs::read_to_string(&client.key_file)?,
            ),
        ]),
    ))
}

/// Creates `secrets` in `namespace`.
///
/// # Errors
/// When the apiserver refuses one.
pub async fn create_secrets(
    client: &Client,
    namespace: &str,
    secrets: Vec<SecretData>,
) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for (name, data) in secrets {
        let secret = serde_json::from_value(json!({
            "metadata": { "name": name }, "stringData": data
        }))?;
        api.create(&PostParams::default(), &secret).await?;
    }
    Ok(())
}

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
    let (ca_name, ca_key) = RUNTIME_CA_SECRET;
    let mut args = vec![
        format!("--kafka-bootstrap-servers={}", env.kafka_secure.bootstrap),
        format!("--kafka-tls-ca={ca_name}/{ca_key}"),
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

/// The operator's flags for the SSL listener that requires client certificates as its
/// default brokers: the runtime pods' CA and certificate Secrets, and the stack's CA
/// and client certificate files for its own client.
pub fn mutual_tls_operator_args(env: &StackEnv) -> Vec<String> {
    let (ca_name, ca_key) = RUNTIME_CA_SECRET;
    let client = &env.kafka_mutual_tls;
    vec![
        format!("--kafka-bootstrap-servers={}", client.bootstrap),
        format!("--kafka-tls-ca={ca_name}/{ca_key}"),
        format!("--kafka-tls-certificate={RUNTIME_CERTIFICATE_SECRET}/user.crt"),
        format!("--kafka-tls-key={RUNTIME_CERTIFICATE_SECRET}/user.key"),
        format!(
            "--kafka-admin-ca-file={}",
            env.kafka_secure.ca_file.display()
        ),
        format!(
            "--kafka-admin-certificate-file={}",
            client.certificate_file.display()
        ),
        format!("--kafka-admin-key-file={}", client.key_file.display()),
    ]
}

/// The runtime's connection to the SASL_SSL listener, trusting the stack's CA when
/// `trusted` (else the system's roots, which lack it).
pub fn sasl_ssl(env: &StackEnv, trusted: bool) -> ResolvedKafka {
    ResolvedKafka {
        bootstrap_servers: vec![env.kafka_secure.bootstrap.clone()],
        tls: Some(TlsFiles {
            ca: trusted.then(|| env.kafka_secure.ca_file.display().to_string()),
            certificate: None,
            key: None,
        }),
        sasl_mechanism: Some(SaslMechanism::ScramSha512),
    }
}

/// The runtime's connection to the SSL listener that requires a client certificate,
/// presenting the stack's client certificate when `certificate`.
pub fn mutual_tls(env: &StackEnv, certificate: bool) -> ResolvedKafka {
    let client = &env.kafka_mutual_tls;
    let file = |path: &Path| certificate.then(|| path.display().to_string());
    ResolvedKafka {
        bootstrap_servers: vec![client.bootstrap.clone()],
        tls: Some(TlsFiles {
            ca: Some(env.kafka_secure.ca_file.display().to_string()),
            certificate: file(&client.certificate_file),
            key: file(&client.key_file),
        }),
        sasl_mechanism: None,
    }
}

/// One way the brokers refuse a runtime client, and the reason a client must report.
pub struct Refusal {
    /// What is wrong, for messages.
    pub case: &'static str,
    /// The connection.
    pub kafka: ResolvedKafka,
    /// The SCRAM password the client presents (the stack's user name goes with it).
    pub password: String,
    /// Text librdkafka's reason holds.
    pub reason: &'static str,
}

/// A wrong password, a broker certificate the client does not trust, and no client
/// certificate where the broker requires one.
pub fn refusals(env: &StackEnv) -> Vec<Refusal> {
    let password = env.kafka_secure.password.clone();
    vec![
        Refusal {
            case: "a wrong password",
            kafka: sasl_ssl(env, true),
            password: "not-the-password".to_owned(),
            reason: "Authentication failed",
        },
        Refusal {
            case: "a certificate signed by a CA the client does not trust",
            kafka: sasl_ssl(env, false),
            password: password.clone(),
            reason: "certificate verify failed",
        },
        Refusal {
            case: "no client certificate for a listener that requires one",
            kafka: mutual_tls(env, false),
            password,
            reason: "alert bad certificate",
        },
    ]
}
