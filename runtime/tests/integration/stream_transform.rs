//! The transform against the stack's Kafka: every record out exactly once with its
//! new key, poison records and results too large for Kafka in the dead-letter topic
//! with their reason, and a clean stop on SIGTERM; with the VRL cleaning program and
//! with its SQL twin.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::stream_support::{
    Cleaning, listing, produce, read_all, sql_cleaning, start, terminate, vrl_cleaning,
    with_program, write_config,
};
use anyhow::Result;
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::json;

/// New input and output topics of `partitions` partitions, and a dead-letter topic.
async fn topics_with_dead_letter(
    env: &StackEnv,
    partitions: i32,
) -> Result<(String, String, String)> {
    let (input, output, dead) = (
        random_name("st-in"),
        random_name("st-out"),
        random_name("st-dlq"),
    );
    kafka::create_topic(env, &input, partitions).await?;
    kafka::create_topic(env, &output, partitions).await?;
    kafka::create_topic(env, &dead, 1).await?;
    Ok((input, output, dead))
}

#[tokio::test(flavor = "multi_thread")]
async fn cleans_every_record_once_and_dead_letters_poison() -> Result<()> {
    cleans_and_dead_letters(&vrl_cleaning()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_cleans_every_record_once_and_dead_letters_poison() -> Result<()> {
    cleans_and_dead_letters(&sql_cleaning()).await
}

async fn cleans_and_dead_letters(cleaning: &Cleaning) -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output, dead) = topics_with_dead_letter(&env, 3).await?;

    const N: usize = 3_000;
    let mut records: Vec<(String, Vec<u8>)> = (0..N)
        .map(|n| (format!("raw-{n}"), serde_json::to_vec(&listing(n)).unwrap()))
        .collect();
    records.push((
        "poison-no-id".into(),
        serde_json::to_vec(&json!({"price": "£1,200 pcm"}))?,
    ));
    records.push(("poison-not-json".into(), b"<html>not json</html>".to_vec()));
    produce(&env, &input, records).await?;

    let config = write_config(
        &env,
        "StreamTransform",
        &with_program(
            json!({
                "input": {"topic": input, "startFrom": "Earliest"},
                "output": {"topic": {"name": output}},
                "deadLetter": {"topic": {"name": dead}},
            }),
            cleaning,
        ),
    )?;
    let mut transform = start("transform", &config, &random_name("instance"))?;

    let cleaned = read_all(
        &env,
        &output,
        N,
        Duration::from_secs(90),
        Duration::from_secs(2),
    )
    .await?;
    assert_eq!(cleaned.len(), N, "every record out exactly once");
    let keys: BTreeSet<String> = cleaned.iter().filter_map(|read| read.key.clone()).collect();
    assert_eq!(keys.len(), N, "keys are unique");
    let first = cleaned
        .iter()
        .find(|read| read.key.as_deref() == Some("rightmove:88000001"))
        .expect("record 1");
    assert_eq!(first.payload["monthly_price_minor"], 200_100);
    assert_eq!(
        first.payload["address"],
        "1 Birkenhead Street, Kings Cross WC1X"
    );
    assert_eq!(first.payload["outward_code"], "WC1X");

    let dead_lettered = read_all(
        &env,
        &dead,
        2,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await?;
    assert_eq!(dead_lettered.len(), 2);
    let by_key = |key: &str| {
        dead_lettered
            .iter()
            .find(|read| read.key.as_deref() == Some(key))
            .unwrap()
    };
    let no_id = by_key("poison-no-id");
    assert!(
        no_id.headers["homestream.error"].contains("record has no id"),
        "{:?}",
        no_id.headers
    );
    assert_eq!(no_id.headers["homestream.source.topic"], input);
    assert_eq!(
        no_id.payload,
        json!({"price": "£1,200 pcm"}),
        "the original record"
    );
    assert_eq!(no_id.headers["homestream.program.hash"], cleaning.hash);
    let not_json = by_key("poison-not-json");
    assert!(
        not_json.headers["homestream.error"].starts_with(cleaning.not_json),
        "{:?}",
        not_json.headers
    );
    assert!(not_json.headers.contains_key("homestream.source.offset"));

    terminate(&mut transform)
}

#[tokio::test(flavor = "multi_thread")]
async fn at_least_once_delivers_every_record() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output) = (random_name("st-in"), random_name("st-out"));
    kafka::create_topic(&env, &input, 2).await?;
    kafka::create_topic(&env, &output, 2).await?;
    const N: usize = 1_000;
    produce(
        &env,
        &input,
        (0..N).map(|n| (format!("raw-{n}"), serde_json::to_vec(&listing(n)).unwrap())),
    )
    .await?;
    let config = write_config(
        &env,
        "StreamTransform",
        &json!({
            "input": {"topic": input},
            "output": {"topic": {"name": output}},
            "program": ".seen = true",
            "delivery": "AtLeastOnce",
        }),
    )?;
    let mut transform = start("transform", &config, &random_name("instance"))?;
    let out = read_all(
        &env,
        &output,
        N,
        Duration::from_secs(60),
        Duration::from_secs(1),
    )
    .await?;
    assert_eq!(out.len(), N);
    assert!(out.iter().all(|read| read.payload["seen"] == true
        && read.key.as_deref().is_some_and(|k| k.starts_with("raw-"))));
    terminate(&mut transform)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_too_large_for_kafka_is_dead_lettered_and_the_rest_flow_on() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output, dead) = topics_with_dead_letter(&env, 1).await?;
    // 600 kB in, twice that out: over the producer's 1 MB `message.max.bytes`.
    let large = json!({"text": "x".repeat(600_000)});
    let records = [
        (
            "before".to_owned(),
            serde_json::to_vec(&json!({"text": "a"}))?,
        ),
        ("large".to_owned(), serde_json::to_vec(&large)?),
        (
            "after".to_owned(),
            serde_json::to_vec(&json!({"text": "b"}))?,
        ),
    ];
    produce(&env, &input, records).await?;
    let config = write_config(
        &env,
        "StreamTransform",
        &json!({
            "input": {"topic": input, "startFrom": "Earliest"},
            "output": {"topic": {"name": output}},
            "deadLetter": {"topic": {"name": dead}},
            "program": ".copy = .text",
        }),
    )?;
    let mut transform = start("transform", &config, &random_name("instance"))?;

    let out = read_all(
        &env,
        &output,
        2,
        Duration::from_secs(60),
        Duration::from_secs(2),
    )
    .await?;
    let keys: Vec<_> = out.iter().filter_map(|read| read.key.as_deref()).collect();
    assert_eq!(keys, ["before", "after"]);
    let dead_lettered = read_all(
        &env,
        &dead,
        1,
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await?;
    assert_eq!(dead_lettered.len(), 1);
    assert_eq!(dead_lettered[0].key.as_deref(), Some("large"));
    assert_eq!(dead_lettered[0].payload, large, "the original record");
    let reason = &dead_lettered[0].headers["homestream.error"];
    assert!(reason.contains(&output), "{reason}");
    terminate(&mut transform)
}
