//! Proves the stack's Kafka broker is real: the admin API creates topics, keyed records
//! round-trip, and transactions commit (and abort) as read_committed consumers see them.

use std::time::Duration;

use anyhow::{Context, Result};
use homestream_tests::{StackEnv, kafka, random_name};
use rdkafka::admin::AdminOptions;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn admin_creates_a_topic_with_partitions() -> Result<()> {
    let env = StackEnv::load()?;
    let topic = random_name("smoke-admin");
    kafka::create_topic(&env, &topic, 3).await?;
    let admin = kafka::admin(&env)?;
    let metadata = admin
        .inner()
        .fetch_metadata(Some(&topic), Timeout::After(TIMEOUT))?;
    let described = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .context("topic missing")?;
    assert_eq!(described.partitions().len(), 3);
    admin.delete_topics(&[&topic], &AdminOptions::new()).await?;
    Ok(())
}

#[tokio::test]
async fn keyed_records_round_trip() -> Result<()> {
    let env = StackEnv::load()?;
    let topic = random_name("smoke-keyed");
    kafka::create_topic(&env, &topic, 2).await?;
    let producer: FutureProducer = kafka::client_config(&env)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    for i in 0..10 {
        let (key, payload) = (format!("listing-{i}"), format!("{{\"price\":{}}}", i * 100));
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                TIMEOUT,
            )
            .await
            .map_err(|(error, _)| error)?;
    }
    let consumer = kafka::consumer(&env, &topic, "read_uncommitted")?;
    let mut records = kafka::collect_n(&consumer, 10, TIMEOUT).await?;
    records.sort();
    let mut expected: Vec<_> = (0..10)
        .map(|i| {
            (
                Some(format!("listing-{i}")),
                Some(format!("{{\"price\":{}}}", i * 100)),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(records, expected);
    Ok(())
}

#[tokio::test]
async fn transactions_commit_and_abort() -> Result<()> {
    let env = StackEnv::load()?;
    let topic = random_name("smoke-txn");
    kafka::create_topic(&env, &topic, 1).await?;
    let producer: FutureProducer = kafka::client_config(&env)
        .set("transactional.id", random_name("smoke-txn-id"))
        .create()?;
    producer.init_transactions(TIMEOUT)?;

    producer.begin_transaction()?;
    send(&producer, &topic, "aborted").await?;
    producer.abort_transaction(TIMEOUT)?;

    producer.begin_transaction()?;
    send(&producer, &topic, "committed-1").await?;
    send(&producer, &topic, "committed-2").await?;
    producer.commit_transaction(TIMEOUT)?;

    let committed = kafka::consumer(&env, &topic, "read_committed")?;
    let records = kafka::collect_n(&committed, 2, TIMEOUT).await?;
    let keys: Vec<_> = records
        .into_iter()
        .map(|(key, _)| key.unwrap_or_default())
        .collect();
    assert_eq!(keys, ["committed-1", "committed-2"]);

    // read_uncommitted also sees the aborted record, which proves the abort was real.
    let uncommitted = kafka::consumer(&env, &topic, "read_uncommitted")?;
    let records = kafka::collect_n(&uncommitted, 3, TIMEOUT).await?;
    assert_eq!(records[0].0.as_deref(), Some("aborted"));
    Ok(())
}

async fn send(producer: &FutureProducer, topic: &str, key: &str) -> Result<()> {
    producer
        .send(FutureRecord::to(topic).key(key).payload("{}"), TIMEOUT)
        .await
        .map_err(|(error, _)| error)
        .with_context(|| format!("producing {key}"))?;
    Ok(())
}
