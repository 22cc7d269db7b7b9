//! The baselines: records produced to a topic, and the bare loops that show the
//! machine's raw limits (an rdkafka consume-and-produce loop, a prepared-insert loop).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;
use homestream_tests::{StackEnv, kafka, random_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

use crate::child::proc_usage;
use crate::{CONCURRENCY, Measured};

/// Produces records `0..records`, each the key and payload `record` makes of its number.
pub(crate) fn produce(
    env: &StackEnv,
    topic: &str,
    records: usize,
    mut record: impl FnMut(usize) -> Result<(String, Vec<u8>)>,
) -> Result<()> {
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        kafka::client_config(env)
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .create()?;
    for n in 0..records {
        let (key, payload) = record(n)?;
        let mut message = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((_, returned)) => {
                    message = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Records each delivery's latency from the receipt of its input.
#[derive(Default)]
pub(crate) struct Latencies(Mutex<Vec<f64>>);

impl ClientContext for Latencies {}

impl ProducerContext for Latencies {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, received: Box<Instant>) {
        if result.is_ok()
            && let Ok(mut latencies) = self.0.lock()
        {
            latencies.push(received.elapsed().as_secs_f64());
        }
    }
}

/// The raw limit of Kafka: consume, produce the same record, nothing else.
pub(crate) fn bare_kafka(
    bootstrap: &str,
    input: &str,
    output: &str,
    records: u64,
) -> Result<Measured> {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", bootstrap);
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", random_name("bench-bare"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[input])?;
    let producer: ThreadedProducer<Latencies> = base
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(Latencies::default())?;
    let (started, cpu_before) = (Instant::now(), proc_usage(std::process::id())?.0);
    let mut consumed = 0;
    while consumed < records {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let mut record: BaseRecord<'_, [u8], [u8], Box<Instant>> =
            BaseRecord::with_opaque_to(output, Box::new(Instant::now()))
                .payload(message.payload().unwrap_or_default());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        consumed += 1;
    }
    producer.flush(Duration::from_secs(60))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let (cpu, peak_rss_mib) = proc_usage(std::process::id())?;
    let mut latencies = std::mem::take(
        &mut *producer
            .context()
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?,
    );
    Ok(measured(
        records,
        wall_seconds,
        cpu - cpu_before,
        peak_rss_mib,
        &mut latencies,
    ))
}

pub(crate) fn measured(
    records: u64,
    wall_seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    latencies: &mut [f64],
) -> Measured {
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * quantile) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Measured {
        records,
        wall_seconds,
        cpu_seconds,
        peak_rss_mib,
        p50_ms: Some(at(0.5) * 1e3),
        p99_ms: Some(at(0.99) * 1e3),
        ..Measured::default()
    }
}

/// The columns of the cleaned listing, as the sink declares them.
pub(crate) const COLUMNS: [(&str, &str); 13] = [
    ("listing_key", "text"),
    ("source", "text"),
    ("listing_id", "text"),
    ("url", "text"),
    ("currency", "text"),
    ("price_label", "text"),
    ("monthly_price_minor", "bigint"),
    ("beds", "int"),
    ("baths", "int"),
    ("address", "text"),
    ("postcode", "text"),
    ("outward_code", "text"),
    ("scraped_at", "timestamp"),
];

pub(crate) async fn create_table(env: &StackEnv) -> Result<(Session, String)> {
    let session = SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await?;
    let keyspace = random_name("bench").replace('-', "_");
    session
        .query_unpaged(
            format!("CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            &[],
        )
        .await?;
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect();
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.listings ({}, PRIMARY KEY (listing_key))",
                columns.join(", ")
            ),
            &[],
        )
        .await?;
    Ok((session, keyspace))
}

/// The raw limit of Cassandra: the same prepared insert, values ready, 64 in flight,
/// from one future (run as a task, or on the main thread: `bare-insert ... task|main`),
/// or the same as a task with [`BATCH_ROWS`] rows an unlogged batch (`... batch`).
pub(crate) async fn bare_insert(
    contact_points: &str,
    keyspace: &str,
    records: u64,
    rows_per_request: u64,
) -> Result<Measured> {
    use scylla::statement::batch::{Batch, BatchType};
    use scylla::value::CqlTimestamp;
    let session = SessionBuilder::new()
        .known_nodes(contact_points.split(','))
        .build()
        .await?;
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    let insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.listings ({}) VALUES ({}) USING TIMESTAMP ?",
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        ))
        .await?;
    let mut insert = insert;
    insert.set_consistency(scylla::statement::Consistency::One);
    let (started, cpu_before) = (Instant::now(), proc_usage(std::process::id())?.0);
    let timestamp = CqlTimestamp(1_778_751_000_000);
    let latencies: Vec<Result<Vec<f64>>> =
        futures::stream::iter((0..records).step_by(rows_per_request as usize))
            .map(|first| {
                let (session, insert) = (&session, &insert);
                async move {
                    let sent = Instant::now();
                    let rows: Vec<_> = (first..(first + rows_per_request).min(records))
                    .map(|n| {
                        (
                            format!("realtor:{n}"),
                            "realtor",
                            n.to_string(),
                            "https://www.realtor.com/realestateandhomes-detail/1962661_Adjuntas",
                            "USD",
                            "105000",
                            10_500_000_i64,
                            3_i32,
                            2_i32,
                            "1962661 Street, Adjuntas",
                            "00601",
                            Option::<&str>::None,
                            timestamp,
                            1_778_751_000_000_000_i64,
                        )
                    })
                    .collect();
                    if let [row] = rows.as_slice() {
                        session.execute_unpaged(insert, row).await?;
                    } else {
                        let mut batch = Batch::new(BatchType::Unlogged);
                        for _ in &rows {
                            batch.append_statement(insert.clone());
                        }
                        batch.set_consistency(scylla::statement::Consistency::One);
                        session.batch(&batch, &rows).await?;
                    }
                    Ok(vec![sent.elapsed().as_secs_f64(); rows.len()])
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut latencies: Vec<f64> = latencies.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let wall_seconds = started.elapsed().as_secs_f64();
    let (cpu, peak_rss_mib) = proc_usage(std::process::id())?;
    Ok(measured(
        records,
        wall_seconds,
        cpu - cpu_before,
        peak_rss_mib,
        &mut latencies,
    ))
}
