//! Where records go: the job's Kafka topic through an idempotent producer
//! (`acks=all`), keyed by the record key. A record Kafka does not acknowledge fails
//! the run: a scrape that silently lost listings would look like a success. Brokers
//! that refuse the credentials, or that the client does not trust, fail it at once
//! with the reason, rather than after the delivery timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use homestream_crds::runtime::ResolvedKafka;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde_json::Value;

use homestream_common::kafka::{
    ConnectionError, RefusalContext, RefusedConnection, client_config, producer_config,
};

/// How long librdkafka keeps trying to deliver a record (its own retries included)
/// before it reports failure; also the bound of the final flush.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a publish that waits for acknowledgements looks for a refused connection,
/// which librdkafka would retry until the delivery timeout.
const REFUSAL_CHECK: Duration = Duration::from_millis(200);

/// One record: the key and the JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record key (the job's key field as text).
    pub key: String,
    /// The record (fields and `_meta`).
    pub value: Value,
}

/// Records could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The producer could not be created.
    #[error("creating the Kafka producer: {0}")]
    Create(#[source] Box<KafkaError>),
    /// The connection settings cannot be honoured (a SASL credential is missing).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// Kafka did not acknowledge a record.
    #[error("delivering record {key:?} to topic {topic}: {source}")]
    Delivery {
        /// Topic.
        topic: String,
        /// Record key.
        key: String,
        /// The producer error.
        source: Box<KafkaError>,
    },
    /// The brokers refused the credentials, or the client does not trust the brokers.
    #[error("Kafka refused the connection: {reason}")]
    Refused {
        /// librdkafka's error and reason.
        reason: String,
    },
    /// Records could not be written out (a preview's stdout closed).
    #[error("writing records: {0}")]
    Write(#[source] std::io::Error),
    /// Records were still unacknowledged at the end.
    #[error("flushing records to topic {topic}: {source}")]
    Flush {
        /// Topic.
        topic: String,
        /// The producer error.
        source: Box<KafkaError>,
    },
}

/// Where a crawl publishes its records.
pub trait Output: Send + Sync {
    /// Publishes the records of one page, returning once all are acknowledged.
    fn publish(&self, records: Vec<Record>)
    -> impl Future<Output = Result<(), OutputError>> + Send;
}

/// The job's Kafka topic.
pub struct KafkaOutput {
    producer: FutureProducer<RefusalContext>,
    refused: Arc<RefusedConnection>,
    topic: String,
}

impl std::fmt::Debug for KafkaOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOutput")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaOutput {
    /// An idempotent producer to `topic`, with `client_id` naming the job in broker logs.
    ///
    /// # Errors
    /// When a SASL credential is missing or librdkafka refuses the configuration.
    pub fn new(kafka: &ResolvedKafka, topic: &str, client_id: &str) -> Result<Self, OutputError> {
        // Idempotent with acks=all: librdkafka's own retries cause no duplicates or reordering.
        let mut config = producer_config(&client_config(kafka)?);
        config
            .set("client.id", client_id)
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            // A page's records are sent together; a short linger batches them.
            .set("linger.ms", "20");
        let refused = Arc::new(RefusedConnection::default());
        let producer = config
            .create_with_context(RefusalContext(Arc::clone(&refused)))
            .map_err(|error| OutputError::Create(Box::new(error)))?;
        Ok(Self {
            producer,
            refused,
            topic: topic.to_owned(),
        })
    }

    /// The refused connection, if the brokers refused it.
    fn refusal(&self) -> Result<(), OutputError> {
        match self.refused.reason() {
            Some(reason) => Err(OutputError::Refused {
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Waits until every record sent is acknowledged.
    ///
    /// # Errors
    /// When records are still unacknowledged after the delivery timeout, or at once
    /// when the brokers refused the connection (nothing unacknowledged can arrive).
    pub fn flush(&self) -> Result<(), OutputError> {
        self.refusal()?;
        self.producer
            .flush(Timeout::After(DELIVERY_TIMEOUT))
            .map_err(|source| OutputError::Flush {
                topic: self.topic.clone(),
                source: Box::new(source),
            })
    }
}

impl Output for KafkaOutput {
    async fn publish(&self, records: Vec<Record>) -> Result<(), OutputError> {
        let payloads: Vec<String> = records
            .iter()
            .map(|record| record.value.to_string())
            .collect();
        let sends = records.iter().zip(&payloads).map(|(record, payload)| {
            let message = FutureRecord::to(&self.topic)
                .key(&record.key)
                .payload(payload);
            self.producer
                .send(message, Timeout::After(DELIVERY_TIMEOUT))
        });
        let delivered = join_all(sends);
        tokio::pin!(delivered);
        let results = loop {
            tokio::select! {
                results = &mut delivered => break results,
                () = tokio::time::sleep(REFUSAL_CHECK) => self.refusal()?,
            }
        };
        for (result, record) in results.into_iter().zip(&records) {
            result.map_err(|(source, _)| OutputError::Delivery {
                topic: self.topic.clone(),
                key: record.key.clone(),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }
}

/// Keeps records in memory: for runs whose records are checked in-process (tests, the
/// benchmark) rather than read back from Kafka.
#[derive(Debug, Default)]
pub struct Collect(Mutex<Vec<Record>>);

impl Collect {
    /// The records published so far, in publishing order.
    pub fn records(&self) -> Vec<Record> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Output for Collect {
    async fn publish(&self, records: Vec<Record>) -> Result<(), OutputError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(records);
        Ok(())
    }
}
