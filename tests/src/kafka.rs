//! Kafka helpers: admin client, topic creation and collecting records, against the stack's broker.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};

use crate::StackEnv;

/// A client config with the stack's bootstrap servers.
pub fn client_config(env: &StackEnv) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &env.kafka_bootstrap);
    config
}

/// An admin client for the stack's broker.
///
/// # Errors
/// When librdkafka refuses the configuration.
pub fn admin(env: &StackEnv) -> Result<AdminClient<DefaultClientContext>> {
    client_config(env)
        .create()
        .context("creating a Kafka admin client")
}

/// Creates a topic with `partitions` partitions and one replica.
///
/// # Errors
/// When the broker refuses the topic.
pub async fn create_topic(env: &StackEnv, name: &str, partitions: i32) -> Result<()> {
    let results = admin(env)?
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .context("sending CreateTopics")?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic}: {code}");
        }
    }
    // The controller answers before the broker's metadata has the topic: wait until it
    // names every partition with a leader, so the caller may produce or describe at once.
    let admin = admin(env)?;
    crate::wait::until(
        &format!("topic {name} in the broker's metadata"),
        Duration::from_secs(30),
        || async {
            let metadata = admin.inner().fetch_metadata(
                Some(name),
                rdkafka::util::Timeout::After(Duration::from_secs(5)),
            )?;
            let led = metadata
                .topics()
                .iter()
                .find(|t| t.name() == name)
                .map_or(0, |t| {
                    t.partitions().iter().filter(|p| p.leader() >= 0).count()
                });
            Ok(if led == usize::try_from(partitions)? {
                Ok(())
            } else {
                Err(format!("{led} of {partitions} partitions led"))
            })
        },
    )
    .await
}

/// A consumer in a fresh group reading `topic` from the beginning with `isolation`
/// (`read_committed` or `read_uncommitted`).
///
/// # Errors
/// When the consumer cannot be created or subscribed.
pub fn consumer(env: &StackEnv, topic: &str, isolation: &str) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = client_config(env)
        .set("group.id", crate::random_name("hs-test-group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .context("creating a Kafka consumer")?;
    consumer
        .subscribe(&[topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    Ok(consumer)
}

/// Collects exactly `n` records from `consumer` as `(key, payload)` strings, failing
/// when they do not all arrive within `timeout`.
///
/// # Errors
/// On a consumer error or a timeout, naming how many records had arrived.
pub async fn collect_n(
    consumer: &StreamConsumer,
    n: usize,
    timeout: Duration,
) -> Result<Vec<(Option<String>, Option<String>)>> {
    let mut records = Vec::with_capacity(n);
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + timeout;
    while records.len() < n {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .with_context(|| {
                format!(
                    "timed out after {timeout:?} with {} of {n} records",
                    records.len()
                )
            })?;
        let message: BorrowedMessage<'_> = next.context("consumer stream ended")??;
        records.push((text(message.key()), text(message.payload())));
    }
    Ok(records)
}

/// A record's key or payload as text (lossy UTF-8).
pub fn text(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}
