//! Metadata requests whose connection failures can be told apart. When the brokers
//! refuse a login or a TLS handshake, a request only fails with "broker transport
//! failure" or a timeout; librdkafka reports the reason as an error event on the
//! client's main queue, which an `AdminClient` never serves. A consumer serves it when
//! polled, so metadata goes through a consumer of the same settings, and after a
//! failure its queue is drained for the reason.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::{ClientConfig, ClientContext};

use homestream_common::kafka::certificate_refused;

/// How long draining waits for one more queued event: they are already queued when a
/// request failed, so a short wait finds them all.
const DRAIN_WAIT: Duration = Duration::from_millis(50);

/// Why a connection to the brokers failed, as librdkafka reported it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectionFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// librdkafka's description, with the broker.
    pub message: String,
}

/// The failures status tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The brokers refused the SASL login.
    Authentication,
    /// The TLS handshake failed (an untrusted certificate, a plaintext listener), or the
    /// brokers refused the client's certificate.
    Tls,
    /// Anything else: refused connections, timeouts.
    Other,
}

/// Remembers the last connection failure reported while the queue was drained.
#[derive(Default)]
struct FailureContext {
    last: Mutex<Option<ConnectionFailure>>,
}

impl ClientContext for FailureContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let kind = match code {
            // A summary of the failures reported before it, not a reason of its own.
            Some(RDKafkaErrorCode::AllBrokersDown) | None => return,
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                FailureKind::Authentication
            }
            Some(RDKafkaErrorCode::SSL) => FailureKind::Tls,
            // The broker refused the operator's client certificate (or its absence).
            _ if certificate_refused(code, reason) => FailureKind::Tls,
            Some(_) => FailureKind::Other,
        };
        *self.last.lock().expect("connection failure lock") = Some(ConnectionFailure {
            kind,
            message: reason.to_owned(),
        });
    }
}

impl ConsumerContext for FailureContext {}

/// A long-lived client for metadata requests (it joins no group).
#[derive(Clone)]
pub struct MetadataClient {
    consumer: Arc<BaseConsumer<FailureContext>>,
}

impl MetadataClient {
    /// A client with `config`'s brokers, security and timeouts.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(config: &ClientConfig) -> KafkaResult<Self> {
        let consumer = config.create_with_context(FailureContext::default())?;
        Ok(Self {
            consumer: Arc::new(consumer),
        })
    }

    /// Metadata of `topic` (blocking); on failure, the latest connection failure
    /// librdkafka reported, if any.
    pub fn fetch(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Metadata, (KafkaError, Option<ConnectionFailure>)> {
        match self.consumer.fetch_metadata(Some(topic), timeout) {
            Ok(metadata) => {
                // The connection works: an earlier failure is history.
                *self.last() = None;
                Ok(metadata)
            }
            Err(error) => Err((error, self.latest_failure())),
        }
    }

    /// Serves every queued event (errors reach [`FailureContext`], the last one wins)
    /// and returns the latest failure. It is kept until a request succeeds: librdkafka
    /// reports a failure that keeps recurring only once.
    fn latest_failure(&self) -> Option<ConnectionFailure> {
        while self.consumer.poll(DRAIN_WAIT).is_some() {}
        self.last().clone()
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<ConnectionFailure>> {
        self.consumer
            .context()
            .last
            .lock()
            .expect("connection failure lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(context: &FailureContext, code: RDKafkaErrorCode, reason: &str) {
        context.error(KafkaError::Global(code), reason);
    }

    #[test]
    fn the_last_specific_failure_is_kept_and_all_brokers_down_is_no_reason() {
        let context = FailureContext::default();
        reported(
            &context,
            RDKafkaErrorCode::Authentication,
            "SASL authentication error: Authentication failed",
        );
        reported(
            &context,
            RDKafkaErrorCode::AllBrokersDown,
            "1/1 brokers are down",
        );
        let last = context.last.lock().unwrap().clone().unwrap();
        assert_eq!(last.kind, FailureKind::Authentication);
        assert!(last.message.contains("Authentication failed"));

        reported(&context, RDKafkaErrorCode::SSL, "SSL handshake failed");
        assert_eq!(
            context.last.lock().unwrap().as_ref().map(|f| f.kind),
            Some(FailureKind::Tls)
        );
        reported(
            &context,
            RDKafkaErrorCode::BrokerTransportFailure,
            "ssl://127.0.0.1:9095/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: SSL alert number 42",
        );
        assert_eq!(
            context.last.lock().unwrap().as_ref().map(|f| f.kind),
            Some(FailureKind::Tls),
            "a client certificate the broker refused"
        );
        reported(
            &context,
            RDKafkaErrorCode::BrokerTransportFailure,
            "Connection refused",
        );
        assert_eq!(
            context.last.lock().unwrap().as_ref().map(|f| f.kind),
            Some(FailureKind::Other)
        );
    }
}
