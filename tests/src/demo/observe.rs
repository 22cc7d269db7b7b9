//! What the demo and the end-to-end tests read back from the servers: each resource's
//! Ready condition, the listings rows in Cassandra, and the committed records of a
//! topic.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use homestream_crds::{CassandraSink, DeltaSink, ScrapeJob, StreamTransform};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::{CqlTimestamp, CqlValue};

use crate::{StackEnv, kafka};

/// One homestream resource and its Ready condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `ScrapeJob`, `StreamTransform` or `CassandraSink`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// `True`, `False` or `Unknown` (no condition yet).
    pub status: String,
    /// The condition's reason and message.
    pub reason: String,
}

impl Readiness {
    /// Is the resource Ready?
    pub fn ready(&self) -> bool {
        self.status == "True"
    }
}

/// The resources of `readiness` that are not Ready, as `Kind name (reason: message)`.
pub fn not_ready(readiness: &[Readiness]) -> Vec<String> {
    readiness
        .iter()
        .filter(|r| !r.ready())
        .map(|r| format!("{} {} ({})", r.kind, r.name, r.reason))
        .collect()
}

/// The Ready condition of every homestream resource in `namespace`.
///
/// # Errors
/// When the apiserver cannot be read.
pub async fn readiness(client: &Client, namespace: &str) -> Result<Vec<Readiness>> {
    let kinds = [
        ("ScrapeJob", ApiResource::erase::<ScrapeJob>(&())),
        (
            "StreamTransform",
            ApiResource::erase::<StreamTransform>(&()),
        ),
        ("CassandraSink", ApiResource::erase::<CassandraSink>(&())),
        ("DeltaSink", ApiResource::erase::<DeltaSink>(&())),
    ];
    let mut all = Vec::new();
    for (kind, resource) in kinds {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        for object in api.list(&ListParams::default()).await? {
            let ready = object.data["status"]["conditions"]
                .as_array()
                .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"));
            let text = |key: &str| {
                ready
                    .and_then(|c| c[key].as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            all.push(Readiness {
                kind,
                name: object.metadata.name.clone().unwrap_or_default(),
                status: ready.map_or_else(|| "Unknown".to_owned(), |_| text("status")),
                reason: format!("{}: {}", text("reason"), text("message")),
            });
        }
    }
    Ok(all)
}

/// A Cassandra session on the stack's contact points.
///
/// # Errors
/// When Cassandra cannot be reached.
pub async fn cassandra(env: &StackEnv) -> Result<Session> {
    SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await
        .context("connecting to Cassandra")
}

/// A row of the `listings` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingRow {
    /// The portal, or the ScrapeJob when the page had no host name.
    pub source: String,
    /// The portal's listing id.
    pub listing_id: String,
    /// Monthly rent in minor units (pence, cents); `None` for a price on application.
    pub monthly_price_minor: Option<i64>,
    /// The price as the page showed it.
    pub price_label: Option<String>,
    /// Bedrooms.
    pub beds: Option<i32>,
    /// Bathrooms.
    pub baths: Option<i32>,
    /// One-line address.
    pub address: Option<String>,
    /// The UK postcode's outward code.
    pub outward_code: Option<String>,
    /// When the scraper fetched the page, in milliseconds since the epoch.
    pub scraped_at_ms: Option<i64>,
}

type RawListingRow = (
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<CqlTimestamp>,
);

/// Every row of `keyspace.listings` (absent table: an error).
///
/// # Errors
/// When the query fails.
pub async fn listing_rows(session: &Session, keyspace: &str) -> Result<Vec<ListingRow>> {
    let result = session
        .query_unpaged(
            format!(
                "SELECT source, listing_id, monthly_price_minor, price_label, beds, baths, \
                 address, outward_code, scraped_at FROM {keyspace}.listings"
            ),
            &[],
        )
        .await
        .with_context(|| format!("reading {keyspace}.listings"))?
        .into_rows_result()?;
    let mut rows: Vec<ListingRow> = result
        .rows::<RawListingRow>()?
        .map(|row| {
            row.map(|r| ListingRow {
                source: r.0,
                listing_id: r.1,
                monthly_price_minor: r.2,
                price_label: r.3,
                beds: r.4,
                baths: r.5,
                address: r.6,
                outward_code: r.7,
                scraped_at_ms: r.8.map(|t| t.0),
            })
        })
        .collect::<Result<_, _>>()?;
    rows.sort_by(|a, b| (&a.source, &a.listing_id).cmp(&(&b.source, &b.listing_id)));
    Ok(rows)
}

/// A CQL value as cqlsh would show it: text without quotes, timestamps in RFC 3339.
pub fn cql_text(value: &CqlValue) -> String {
    match value {
        CqlValue::Text(text) | CqlValue::Ascii(text) => text.clone(),
        CqlValue::Int(n) => n.to_string(),
        CqlValue::BigInt(n) => n.to_string(),
        CqlValue::Double(n) => n.to_string(),
        CqlValue::Boolean(b) => b.to_string(),
        CqlValue::Timestamp(t) => chrono::DateTime::from_timestamp_millis(t.0)
            .map_or_else(|| t.0.to_string(), |time| time.to_rfc3339()),
        other => format!("{other:?}"),
    }
}

/// How many rows `keyspace.table` holds.
///
/// # Errors
/// When the query fails (for instance, the table does not exist).
pub async fn count_rows(session: &Session, keyspace: &str, table: &str) -> Result<i64> {
    let result = session
        .query_unpaged(format!("SELECT COUNT(*) FROM {keyspace}.{table}"), &[])
        .await
        .with_context(|| format!("counting {keyspace}.{table}"))?
        .into_rows_result()?;
    Ok(result.single_row::<(i64,)>()?.0)
}

/// The committed records of `topic` (read with `read_committed` from the start, until
/// every partition is read up to its end), as `(key, payload)` strings.
///
/// # Errors
/// When Kafka cannot be read, or the end is not reached within a minute.
pub async fn committed_records(
    env: &StackEnv,
    topic: &str,
) -> Result<Vec<(Option<String>, Option<String>)>> {
    let consumer: StreamConsumer = kafka::client_config(env)
        .set("group.id", crate::random_name("hs-observe"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("creating a Kafka consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (_, high) =
            consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
        ends.insert(partition.id(), high);
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(message) => {
                let message = message?;
                records.push((kafka::text(message.key()), kafka::text(message.payload())));
            }
            // Idle: done when every partition is read up to its end, or up to the
            // commit marker that ends it (a control record the consumer never returns).
            Err(_) if read_to_end(&consumer, topic, &ends)? => break,
            Err(_) => {}
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{topic} not read to its end within a minute ({} records so far)",
            records.len()
        );
    }
    Ok(records)
}

fn read_to_end(consumer: &StreamConsumer, topic: &str, ends: &HashMap<i32, i64>) -> Result<bool> {
    let positions = consumer.position()?;
    Ok(ends.iter().all(|(partition, end)| {
        *end == 0
            || positions
                .find_partition(topic, *partition)
                .and_then(|p| p.offset().to_raw())
                .is_some_and(|position| position >= *end - 1)
    }))
}
