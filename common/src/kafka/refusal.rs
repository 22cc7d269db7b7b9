//! Client errors that only new settings can fix (refused credentials or certificates,
//! an untrusted broker): librdkafka retries them for ever, so they are recorded here
//! for the component to stop with.

use std::sync::{Arc, OnceLock};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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
