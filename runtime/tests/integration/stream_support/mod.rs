//! Helpers of the stream integration tests: listing records, runtime config files,
//! running the real `homestream-runtime` binary, and reading records with headers.

#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use homestream_tests::{StackEnv, kafka, random_name};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde_json::{Value, json};

pub mod delta;

pub const CLEAN_LISTING: &str = include_str!("../../../programs/clean_listing.vrl");

/// The cleaning program in one of its two languages: the StreamTransform spec's fields
/// that carry it, and the program hash its dead letters name.
pub struct Cleaning {
    /// `{"program": ...}` or `{"sql": {"query", "columns"}}`.
    pub spec: Value,
    /// The hash in the `homestream.program.hash` header.
    pub hash: String,
    /// How the reason of a payload that is not JSON starts.
    pub not_json: &'static str,
}

/// The VRL cleaning program.
pub fn vrl_cleaning() -> Cleaning {
    Cleaning {
        spec: json!({"program": CLEAN_LISTING}),
        hash: homestream_common::program::program_hash(CLEAN_LISTING),
        not_json: "payload is not JSON",
    }
}

/// The SQL cleaning program, as the example StreamTransform declares it.
pub fn sql_cleaning() -> Cleaning {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/examples/pipeline/normalise-listings-sql.streamtransform.yaml"
    );
    let example: homestream_crds::StreamTransform =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("the SQL example"))
            .expect("the SQL example parses");
    let program = example
        .spec
        .validate()
        .expect("the SQL example is valid")
        .program;
    Cleaning {
        spec: json!({"sql": example.spec.sql}),
        hash: homestream_common::program::transform_program_hash(&program),
        not_json: "payload does not decode",
    }
}

/// A StreamTransform spec: `fields` with the cleaning program's.
pub fn with_program(mut fields: Value, cleaning: &Cleaning) -> Value {
    if let (Some(fields), Some(program)) = (fields.as_object_mut(), cleaning.spec.as_object()) {
        fields.extend(program.clone());
    }
    fields
}

/// A record as the Rightmove ScrapeJob publishes it, numbered `n`.
pub fn listing(n: usize) -> Value {
    json!({
        "id": format!("{}", 88_000_000 + n),
        "url": format!("/properties/{}", 88_000_000 + n),
        "price": if n.is_multiple_of(2) { format!("£{} pw", 400 + n % 300) } else { format!("£{},{:03} pcm", 1 + n % 4, n % 1000) },
        "beds": n % 5,
        "baths": if n.is_multiple_of(7) { Value::Null } else { json!(1 + n % 3) },
        "address": format!("{} Birkenhead Street , Kings Cross WC1X", n),
        "_meta": {"sourceUrl": "https://www.rightmove.co.uk/property-to-rent/find.html", "job": "rightmove-rentals",
                  "run": "rightmove-rentals-1", "scrapedAt": "2026-05-14T09:30:00Z"},
    })
}

/// Produces `(key, payload)` records to `topic` and waits for every delivery.
pub async fn produce(
    env: &StackEnv,
    topic: &str,
    records: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> Result<()> {
    let producer: FutureProducer = kafka::client_config(env)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("creating a producer")?;
    let sends: Vec<_> = records
        .into_iter()
        .map(|(key, payload)| {
            let producer = producer.clone();
            let topic = topic.to_owned();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(error, _)| error)
            }
        })
        .collect();
    for result in futures::stream::iter(sends)
        .buffer_unordered(10_000)
        .collect::<Vec<_>>()
        .await
    {
        result.context("producing a test record")?;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing")?;
    Ok(())
}

/// The runtime config file for a resource of `kind` with `spec` (JSON, which YAML reads).
pub fn write_config(env: &StackEnv, kind: &str, spec: &Value) -> Result<PathBuf> {
    let kafka = json!({"bootstrapServers": env.kafka_bootstrap.split(',').collect::<Vec<_>>()});
    write_config_with_kafka(env, kind, spec, kafka)
}

/// [`write_config`] with the resolved Kafka connection given (another listener, say).
pub fn write_config_with_kafka(
    env: &StackEnv,
    kind: &str,
    spec: &Value,
    kafka: Value,
) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(random_name("hs-stream-test"));
    std::fs::create_dir_all(&dir)?;
    let mut config = json!({
        "resource": {"kind": kind, "namespace": "test", "name": random_name("resource"), "generation": 1},
        "spec": spec,
        "kafka": kafka,
    });
    if kind == "CassandraSink" {
        config["cassandra"] =
            json!({"contactPoints": env.cassandra_contact_points.split(',').collect::<Vec<_>>()});
    }
    if kind == "DeltaSink" {
        config["s3"] = env.lake.resolved();
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok(path)
}

/// Starts `homestream-runtime <subcommand>` with `config`, as the local node would.
pub fn start(subcommand: &str, config: &PathBuf, instance: &str) -> Result<Child> {
    start_listening(subcommand, config, instance, "127.0.0.1:0")
}

/// [`start`], serving `/metrics`, `/healthz` and `/readyz` on `listen`.
pub fn start_listening(
    subcommand: &str,
    config: &PathBuf,
    instance: &str,
    listen: &str,
) -> Result<Child> {
    command(subcommand, config, instance, listen)
        .spawn()
        .context("starting homestream-runtime")
}

/// The command [`start_listening`] runs, to add to before spawning.
pub fn command(subcommand: &str, config: &PathBuf, instance: &str, listen: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_homestream-runtime"));
    command
        .args([subcommand, "--config"])
        .arg(config)
        .args(["--listen", listen])
        .env("HOMESTREAM_INSTANCE", instance)
        .env("RUST_LOG", "warn,homestream_runtime=info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// A free local address to listen on.
pub fn free_address() -> Result<String> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string())
}

/// The HTTP status of `GET /readyz` at `listen`, `None` while nothing answers.
pub async fn readyz(listen: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen).await.ok()?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Counts how often each key occurs in `records`.
pub fn key_counts(records: &[Read]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for read in records {
        *seen
            .entry(read.key.clone().unwrap_or_default())
            .or_default() += 1;
    }
    seen
}

/// Sends SIGTERM and checks that the process exits successfully within 30 s.
pub fn terminate(child: &mut Child) -> Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM failed");
    for _ in 0..300 {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "homestream-runtime exited with {status}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    anyhow::bail!("homestream-runtime did not stop within 30 s of SIGTERM")
}

/// A record read back with its headers.
#[derive(Debug)]
pub struct Read {
    pub key: Option<String>,
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
}

/// Reads `topic` with `isolation` until `n` records arrived, then keeps reading for
/// `settle` to catch any extra (duplicate) records.
pub async fn read_all(
    env: &StackEnv,
    topic: &str,
    n: usize,
    timeout: Duration,
    settle: Duration,
) -> Result<Vec<Read>> {
    let consumer = kafka::consumer(env, topic, "read_committed")?;
    let mut stream = consumer.stream();
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let until = if records.len() < n {
            deadline
        } else {
            tokio::time::Instant::now() + settle
        };
        let Ok(next) = tokio::time::timeout_at(until, stream.next()).await else {
            anyhow::ensure!(
                records.len() >= n,
                "timed out with {} of {n} records in {topic}",
                records.len()
            );
            return Ok(records);
        };
        let message = next.context("stream ended")??;
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let payload = message.payload().map(|p| {
            serde_json::from_slice(p)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(p).into_owned()))
        });
        records.push(Read {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: payload.unwrap_or(Value::Null),
            headers,
        });
    }
}

/// A keyspace and table as the operator would create them for `sink_spec`.
pub async fn create_table(env: &StackEnv) -> Result<(Session, String)> {
    let session = SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await
        .context("connecting to Cassandra")?;
    let keyspace = random_name("ks").replace('-', "_");
    session
        .query_unpaged(
            format!("CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            &[],
        )
        .await?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.listings (listing_key text PRIMARY KEY, monthly_price_minor bigint, beds int, \
                 deposit decimal, furnished boolean, scraped_at timestamp, available date, agent uuid, \
                 tags list<text>, rooms map<text, int>, address text)"
            ),
            &[],
        )
        .await?;
    Ok((session, keyspace))
}

/// A CassandraSink spec writing the table of [`create_table`].
pub fn sink_spec(input: &str, keyspace: &str, dead_letter: &str) -> Value {
    json!({
        "input": {"topic": input},
        "keyspace": {"name": keyspace, "replication": {"simpleStrategy": {"replicationFactor": 1}}},
        "table": {
            "name": "listings",
            "columns": [
                {"name": "listing_key", "type": "text"},
                {"name": "monthly_price_minor", "type": "bigint"},
                {"name": "beds", "type": "int"},
                {"name": "deposit", "type": "decimal"},
                {"name": "furnished", "type": "boolean"},
                {"name": "scraped_at", "type": "timestamp", "jsonPath": "$._meta.scrapedAt"},
                {"name": "available", "type": "date"},
                {"name": "agent", "type": "uuid"},
                {"name": "tags", "type": "list<text>"},
                {"name": "rooms", "type": "map<text, int>"},
                {"name": "address", "type": "text"}
            ],
            "partitionKey": ["listing_key"]
        },
        "consistency": "One",
        "writeConcurrency": 32,
        "deadLetter": {"topic": {"name": dead_letter}}
    })
}

/// A record as the cleaning program outputs it, with more CQL types, numbered `n`.
pub fn cleaned(n: usize) -> Value {
    json!({
        "listing_key": format!("rightmove:{n}"),
        "monthly_price_minor": 273_000 + n,
        "beds": (n % 4).to_string(),
        "deposit": "3150.50",
        "furnished": n.is_multiple_of(2),
        "available": "2026-06-01",
        "agent": "6f1c2b9e-0d4a-4f8e-9a53-1b2c3d4e5f60",
        "tags": ["garden", "pets"],
        "rooms": {"kitchen": 1, "bedroom": 2},
        "address": format!("{n} Acton Street, London"),
        "_meta": {"scrapedAt": "2026-05-14T09:30:00Z"}
    })
}

/// Rows in the table.
pub async fn count_rows(session: &Session, keyspace: &str) -> Result<i64> {
    let (count,) = session
        .query_unpaged(format!("SELECT COUNT(*) FROM {keyspace}.listings"), &[])
        .await?
        .into_rows_result()?
        .single_row::<(i64,)>()?;
    Ok(count)
}

/// Polls the table until it has `n` rows or `timeout` has passed, and returns the last
/// count. A failed count (Cassandra restarting) counts as no rows.
pub async fn rows_within(
    session: &Session,
    keyspace: &str,
    n: usize,
    timeout: Duration,
) -> Result<i64> {
    let n = i64::try_from(n)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let rows = count_rows(session, keyspace).await.unwrap_or(0);
        if rows >= n || tokio::time::Instant::now() > deadline {
            return Ok(rows);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
