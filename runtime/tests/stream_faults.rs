//! Fault tests, in their own file because they disturb the stack: the transform
//! killed with SIGKILL mid-stream and restarted leaves every record exactly once in
//! the output (read committed); the sink killed mid-stream, restarted while
//! Cassandra is stopped for 30 s, leaves every row present after recovery.

mod stream_support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use homestream_tests::stack::{self, Service};
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::json;
use stream_support::{
    CLEAN_LISTING, cleaned, count_rows, create_table, listing, produce, read_all, sink_spec, start,
    terminate, write_config,
};

#[tokio::test(flavor = "multi_thread")]
async fn transform_killed_mid_stream_writes_every_record_exactly_once() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output) = (random_name("st-in"), random_name("st-out"));
    kafka::create_topic(&env, &input, 3).await?;
    kafka::create_topic(&env, &output, 3).await?;
    const N: usize = 60_000;
    produce(
        &env,
        &input,
        (0..N).map(|n| (format!("raw-{n}"), serde_json::to_vec(&listing(n)).unwrap())),
    )
    .await?;
    let config = write_config(
        &env,
        "StreamTransform",
        &json!({"input": {"topic": input}, "output": {"topic": {"name": output}}, "program": CLEAN_LISTING}),
    )?;
    let instance = random_name("instance");

    // Kill it twice, once before and once after output has started to commit.
    for wait in [Duration::from_millis(1500), Duration::from_millis(2500)] {
        let mut transform = start("transform", &config, &instance)?;
        tokio::time::sleep(wait).await;
        transform.kill()?;
        transform.wait()?;
    }
    let mut transform = start("transform", &config, &instance)?;
    let out = read_all(
        &env,
        &output,
        N,
        Duration::from_secs(180),
        Duration::from_secs(3),
    )
    .await?;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for read in &out {
        *seen
            .entry(read.key.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let duplicates: Vec<_> = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .take(5)
        .collect();
    assert!(duplicates.is_empty(), "duplicated: {duplicates:?}");
    assert_eq!(out.len(), N);
    assert_eq!(seen.len(), N);
    terminate(&mut transform)
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_killed_and_cassandra_stopped_for_30s_loses_no_row() -> Result<()> {
    let env = StackEnv::load()?;
    let (session, keyspace) = create_table(&env).await?;
    let (input, dead) = (random_name("cs-in"), random_name("cs-dlq"));
    kafka::create_topic(&env, &input, 3).await?;
    kafka::create_topic(&env, &dead, 1).await?;
    const N: usize = 30_000;
    produce(
        &env,
        &input,
        (0..N).map(|n| {
            (
                format!("rightmove:{n}"),
                serde_json::to_vec(&cleaned(n)).unwrap(),
            )
        }),
    )
    .await?;
    let config = write_config(&env, "CassandraSink", &sink_spec(&input, &keyspace, &dead))?;

    // Cassandra stops under a running sink (its writes retry with backoff), the sink
    // is killed during the outage and restarted; Cassandra comes back after 30 s.
    let mut sink = start("sink", &config, "sink-0")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack::stop(Service::Cassandra)?;
    let stopped = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    sink.kill()?;
    sink.wait()?;
    // A sink started during the outage cannot open its session: it exits and the pod
    // (here: the loop below) restarts it.
    let mut sink = start("sink", &config, "sink-0")?;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed())).await;
    stack::start(Service::Cassandra)?;
    eprintln!("Cassandra was down for {:?}.", stopped.elapsed());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(Some(status)) = sink.try_wait() {
            eprintln!("sink exited with {status}; restarting it as Kubernetes would");
            sink = start("sink", &config, "sink-0")?;
        }
        let rows = count_rows(&session, &keyspace).await.unwrap_or(0);
        if rows == i64::try_from(N)? || tokio::time::Instant::now() > deadline {
            assert_eq!(rows, i64::try_from(N)?, "rows after recovery");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    terminate(&mut sink)
}
