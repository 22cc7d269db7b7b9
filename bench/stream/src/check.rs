//! Whether every cleaner made the same records: on a sample of keys spread over the
//! run's records, each transform's value (homestream's SQL program, Spark's built-ins,
//! Spark's Python UDF) against the VRL transform's, compared as JSON (so field order
//! aside), and the rows Spark's sink wrote against homestream's sink's.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use homestream_common::program::VrlProgram;
use homestream_tests::{StackEnv, kafka, random_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use scylla::client::session_builder::SessionBuilder;
use serde_json::Value;

use crate::{PARTITIONS, program, records};

/// Keys compared.
const SAMPLE: usize = 1000;
/// Reading a million records takes seconds; a topic that does not end is an error.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// What a run wrote, to compare.
#[derive(Default)]
pub(crate) struct Outputs {
    /// The VRL transform's topic, the reference of the other topics.
    pub(crate) reference_topic: Option<String>,
    /// Other cleaners' topics, by row.
    pub(crate) topics: Vec<(&'static str, String)>,
    /// homestream's sink's keyspace, the reference of Spark's sink's.
    pub(crate) sink_keyspace: Option<String>,
    pub(crate) spark_keyspace: Option<String>,
}

/// One line a comparison: how many of the sample's keys agree.
///
/// # Errors
/// When a topic or table cannot be read.
pub(crate) async fn check(
    env: &StackEnv,
    outputs: &Outputs,
    records: usize,
) -> Result<Vec<String>> {
    let keys = sample_keys(records)?;
    let mut lines = vec![format!(
        "output check on {} keys spread over the records (same cleaned value, as JSON):",
        keys.len()
    )];
    if let Some(reference) = &outputs.reference_topic {
        let expected = topic_values(env, reference, &keys)?;
        for (row, topic) in &outputs.topics {
            let values = topic_values(env, topic, &keys)?;
            lines.push(agreement(
                row,
                "the VRL transform's",
                &expected,
                &values,
                &keys,
            ));
        }
    }
    if let (Some(sink), Some(spark)) = (&outputs.sink_keyspace, &outputs.spark_keyspace) {
        let session = SessionBuilder::new()
            .known_nodes(env.cassandra_contact_points.split(','))
            .build()
            .await?;
        let expected = table_rows(&session, sink, &keys).await?;
        let rows = table_rows(&session, spark, &keys).await?;
        lines.push(agreement(
            crate::spark::SINK,
            "the sink's rows",
            &expected,
            &rows,
            &keys,
        ));
    }
    Ok(lines)
}

/// The keys of [`SAMPLE`] records spread evenly over `records`, as the VRL cleaning
/// program makes them.
fn sample_keys(records: usize) -> Result<HashSet<String>> {
    let program = VrlProgram::compile(program::VRL).map_err(|errors| anyhow!("{errors:?}"))?;
    let mut runner = program.runner();
    let sample = SAMPLE.min(records);
    (0..sample)
        .map(|index| records::cleaned(&mut runner, index * records / sample).map(|(key, _)| key))
        .collect()
}

/// The values of `keys` in `topic` (read committed, to its end).
fn topic_values(
    env: &StackEnv,
    topic: &str,
    keys: &HashSet<String>,
) -> Result<HashMap<String, Value>> {
    let consumer: BaseConsumer = kafka::client_config(env)
        .set("group.id", random_name("bench-check"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&partitions)?;
    let (mut values, mut ended, started) = (HashMap::new(), HashSet::new(), Instant::now());
    while ended.len() < PARTITIONS as usize {
        if started.elapsed() > READ_TIMEOUT {
            bail!("{topic} did not end within {READ_TIMEOUT:?}");
        }
        match consumer.poll(Duration::from_secs(1)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            Some(Err(error)) => return Err(error).with_context(|| format!("reading {topic}")),
            Some(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default());
                if keys.contains(key.as_ref()) {
                    let value = serde_json::from_slice(message.payload().unwrap_or_default())
                        .with_context(|| format!("{topic}: the value of {key} is not JSON"))?;
                    values.insert(key.into_owned(), value);
                }
            }
        }
    }
    Ok(values)
}

/// The rows of `keys` in `keyspace.listings`, as Cassandra writes them in JSON.
async fn table_rows(
    session: &scylla::client::session::Session,
    keyspace: &str,
    keys: &HashSet<String>,
) -> Result<HashMap<String, Value>> {
    let select = session
        .prepare(format!(
            "SELECT JSON * FROM {keyspace}.listings WHERE listing_key = ?"
        ))
        .await?;
    let mut rows = HashMap::new();
    for key in keys {
        let result = session
            .execute_unpaged(&select, (key,))
            .await?
            .into_rows_result()?;
        if let Some((json,)) = result.maybe_first_row::<(String,)>()? {
            rows.insert(key.clone(), serde_json::from_str(&json)?);
        }
    }
    Ok(rows)
}

/// "row: N of M equal to the reference's", with the first difference if any.
fn agreement(
    row: &str,
    reference: &str,
    expected: &HashMap<String, Value>,
    actual: &HashMap<String, Value>,
    keys: &HashSet<String>,
) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let (mut equal, mut first_difference) = (0, None);
    for key in sorted {
        match (expected.get(key), actual.get(key)) {
            (Some(expected), Some(actual)) if expected == actual => equal += 1,
            (expected, actual) => {
                first_difference.get_or_insert_with(|| difference(key, expected, actual));
            }
        }
    }
    let verdict = if equal == keys.len() {
        "OK"
    } else {
        "DIFFERENT"
    };
    format!(
        "  {row}: {equal} of {} equal to {reference} [{verdict}]{}",
        keys.len(),
        first_difference.map_or_else(String::new, |difference| format!("; first: {difference}"))
    )
}

fn difference(key: &str, expected: Option<&Value>, actual: Option<&Value>) -> String {
    match (expected, actual) {
        (None, _) => format!("{key} missing from the reference"),
        (_, None) => format!("{key} missing"),
        (Some(expected), Some(actual)) => {
            let fields: Vec<String> = expected
                .as_object()
                .into_iter()
                .chain(actual.as_object())
                .flat_map(|object| object.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|field| expected.get(field) != actual.get(field))
                .map(|field| {
                    format!(
                        "{field} {} vs {}",
                        expected.get(field).unwrap_or(&Value::Null),
                        actual.get(field).unwrap_or(&Value::Null)
                    )
                })
                .collect();
            format!("{key}: {}", fields.join(", "))
        }
    }
}
