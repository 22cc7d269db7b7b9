//! Kafka plumbing shared by the transform and the sink: client settings from the
//! resolved connection, consumer and producer defaults, the consumer group name,
//! consumer lag from librdkafka's statistics, and the client errors that stop a
//! component.

use std::sync::{Arc, OnceLock};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

use homestream_crds::connection::SaslMechanism;
use homestream_crds::runtime::{
    KAFKA_PASSWORD_ENV, KAFKA_USERNAME_ENV, ResolvedKafka, ResourceIdentity, TlsFiles,
};
use homestream_crds::topic::{StartFrom, TopicInput};
use prometheus_client::metrics::gauge::Gauge;

/// How often librdkafka reports statistics, from which the lag gauge is set.
const STATISTICS_INTERVAL_MS: &str = "5000";
/// Prefetched records per partition are bounded in size so that a slow sink or
/// program holds a few megabytes, not librdkafka's default of 64 MiB per partition.
const CONSUMER_QUEUE_KBYTES: &str = "8192";
/// How long a partition's fetching pauses once that queue is full. librdkafka's default
/// of one second let a consumer drain the queue and then sit idle for most of the
/// second: about 25 000 records per second, whatever the program cost. The queue
/// drains in milliseconds, so fetching resumes after a few.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";
/// A member that died (SIGKILL, a lost node) leaves its group after this long rather
/// than librdkafka's 45 s. Until it has left, a rebalance waits for it and the
/// transform cannot commit offsets, so its open transaction would outlive the
/// transaction timeout (15 s) and the broker would fence it. Heartbeats come from
/// librdkafka's own thread, so a busy program does not make a live member look dead.
const SESSION_TIMEOUT_MS: &str = "10000";
/// The producer queue bound: `send` reports it full and the caller waits, which is
/// the transform's backpressure.
const PRODUCER_QUEUE_KBYTES: &str = "32768";

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

/// The consumer group: the declared one, else `homestream.<namespace>.<name>`.
pub fn group_id(input: &TopicInput, resource: &ResourceIdentity) -> String {
    input.consumer_group.as_ref().map_or_else(
        || format!("homestream.{}.{}", resource.namespace, resource.name),
        |group| group.as_str().to_owned(),
    )
}

/// Consumer settings: the group, where a new group starts, no automatic offset
/// store (each component stores or commits only what is done), and a bounded queue
/// that is topped up as soon as it has room.
pub fn consumer_config(base: &ClientConfig, group: &str, input: &TopicInput) -> ClientConfig {
    let mut config = base.clone();
    config
        .set("group.id", group)
        .set(
            "auto.offset.reset",
            match input.start_from.unwrap_or_default() {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("enable.auto.offset.store", "false")
        // Read only committed records, so an upstream exactly-once transform's
        // aborted output never flows on.
        .set("isolation.level", "read_committed")
        .set("queued.max.messages.kbytes", CONSUMER_QUEUE_KBYTES)
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        // Eager rebalancing: every partition is revoked at a rebalance, so the
        // transform aborts its open transaction and restarts from committed offsets.
        .set("partition.assignment.strategy", "range,roundrobin");
    config
}

/// Producer settings: idempotent, `acks=all`, a bounded queue.
pub fn producer_config(base: &ClientConfig) -> ClientConfig {
    let mut config = base.clone();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", PRODUCER_QUEUE_KBYTES);
    config
}

/// TLS alerts with which a broker refuses the client's certificate: none was presented
/// where one is required, or the broker does not trust it. librdkafka reports them as
/// a transport failure, with the alert in the reason.
const CERTIFICATE_REFUSED_ALERTS: [&str; 3] = [
    "alert bad certificate",
    "alert certificate required",
    "alert unknown ca",
];

/// Whether a client error says the broker refused the client's certificate (see
/// [`CERTIFICATE_REFUSED_ALERTS`]): as permanent as an untrusted broker certificate.
pub fn certificate_refused(code: Option<RDKafkaErrorCode>, reason: &str) -> bool {
    matches!(
        code,
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::SSL)
    ) && CERTIFICATE_REFUSED_ALERTS
        .iter()
        .any(|alert| reason.contains(alert))
}

/// The first error of a component's Kafka clients that only new settings can fix: the
/// brokers refused the credentials or the client's certificate, or the client does not
/// trust the brokers' certificate. librdkafka retries both for ever, so a component that went on would
/// stall, ready and silent; the clients' contexts record the error here instead, and
/// the component stops with it, so that its pod restarts with the reason in its log.
#[derive(Debug, Default)]
pub struct RefusedConnection(OnceLock<String>);

impl RefusedConnection {
    /// Records a client error, as a context's [`rdkafka::ClientContext::error`] gets
    /// it, if it is one of those; logs it either way.
    pub fn observe(&self, error: &KafkaError, reason: &str) {
        tracing::error!(%error, reason, "Kafka client error.");
        let code = error.rdkafka_error_code();
        let refused = match code {
            Some(RDKafkaErrorCode::Authentication) => true,
            Some(RDKafkaErrorCode::SSL) if reason.contains("certificate verify failed") => true,
            _ => certificate_refused(code, reason),
        };
        if refused {
            let _ = self.0.set(format!("{error}: {reason}"));
        }
    }

    /// The error recorded, if any.
    pub fn reason(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The context of a client that needs nothing of its own but to notice a
/// [`RefusedConnection`], which its owner keeps a handle to.
#[derive(Clone, Debug, Default)]
pub struct RefusalContext(pub Arc<RefusedConnection>);

impl ClientContext for RefusalContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.observe(&error, reason);
    }
}

/// Sets `lag` to the consumer lag summed over the partitions this client consumes.
pub fn record_lag(lag: &Gauge, statistics: &Statistics) {
    let total: i64 = statistics
        .topics
        .values()
        .flat_map(|topic| topic.partitions.values())
        .map(|partition| partition.consumer_lag)
        .filter(|lag| *lag >= 0)
        .sum();
    lag.set(total);
}

/// The instance name that makes a transactional id unique per replica and stable
/// across restarts of the same pod: `HOMESTREAM_INSTANCE`, else `POD_NAME`, else
/// `HOSTNAME` (the pod name in Kubernetes).
pub fn instance_name() -> String {
    ["HOMESTREAM_INSTANCE", "POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|variable| {
            std::env::var(variable)
                .ok()
                .filter(|value| !value.is_empty())
        })
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Commits the stored offsets at shutdown. Nothing stored since the last automatic
/// commit is not an error; a failure only means the records are redelivered.
pub fn commit_stored<C: ConsumerContext>(consumer: &impl Consumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(%error, "Committing offsets at shutdown failed; they will be redelivered.")
        }
    }
}
