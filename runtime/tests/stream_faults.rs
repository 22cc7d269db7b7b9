//! Fault tests, in a binary of their own because they disturb the stack (no other test
//! may run while Kafka or Cassandra is stopped): the transform (VRL, and SQL) killed
//! with SIGKILL mid-stream and restarted leaves every record exactly once in the output
//! (read committed), and so do two replicas when one is killed and a
//! third joins; the sink killed mid-stream, restarted while Cassandra is stopped for
//! 30 s, leaves every row present after recovery; a sink started while Cassandra is
//! down waits, not ready, and then writes every row; a DeltaSink whose S3 server stops
//! for 30 s mid-stream recovers by itself and writes every record once.

#[path = "integration/stream_support/mod.rs"]
mod stream_support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use homestream_tests::stack::{self, Service};
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::json;
use stream_support::{
    CLEAN_LISTING, Cleaning, cleaned, create_table, delta, free_address, key_counts, listing,
    produce, read_all, readyz, rows_within, sink_spec, sql_cleaning, start, start_listening,
    terminate, vrl_cleaning, with_program, write_config,
};

#[tokio::test(flavor = "multi_thread")]
async fn transform_killed_mid_stream_writes_every_record_exactly_once() -> Result<()> {
    killed_mid_stream_writes_every_record_exactly_once(&vrl_cleaning()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_transform_killed_mid_stream_writes_every_record_exactly_once() -> Result<()> {
    killed_mid_stream_writes_every_record_exactly_once(&sql_cleaning()).await
}

async fn killed_mid_stream_writes_every_record_exactly_once(cleaning: &Cleaning) -> Result<()> {
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
        &with_program(
            json!({"input": {"topic": input}, "output": {"topic": {"name": output}}}),
            cleaning,
        ),
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
    assert_exactly_once(&key_counts(&out), N);
    assert_eq!(out.len(), N);
    terminate(&mut transform)
}

/// Every one of the `n` cleaned keys of `listing(0..n)` occurs exactly once.
fn assert_exactly_once(seen: &BTreeMap<String, usize>, n: usize) {
    let duplicates: Vec<_> = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .take(5)
        .collect();
    assert!(duplicates.is_empty(), "duplicated: {duplicates:?}");
    let missing: Vec<String> = (0..n)
        .map(|i| format!("rightmove:{}", 88_000_000 + i))
        .filter(|key| !seen.contains_key(key))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(seen.len(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_replicas_rebalancing_write_every_record_exactly_once() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, output) = (random_name("st-in"), random_name("st-out"));
    kafka::create_topic(&env, &input, 6).await?;
    kafka::create_topic(&env, &output, 3).await?;
    const N: usize = 40_000;
    let record = |n: usize| (format!("raw-{n}"), serde_json::to_vec(&listing(n)).unwrap());
    produce(&env, &input, (0..N / 2).map(record)).await?;
    let config = write_config(
        &env,
        "StreamTransform",
        &json!({"input": {"topic": input}, "output": {"topic": {"name": output}}, "program": CLEAN_LISTING}),
    )?;

    // Two replicas share the group (distinct transactional ids); the second half of
    // the input arrives while they run; one is killed and a third joins, so the
    // partitions move twice while transactions are open.
    let mut first = start("transform", &config, &random_name("replica"))?;
    let mut second = start("transform", &config, &random_name("replica"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let producing = tokio::spawn({
        let (env, input) = (env.clone(), input.clone());
        async move { produce(&env, &input, (N / 2..N).map(record)).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill()?;
    second.wait()?;
    let mut third = start("transform", &config, &random_name("replica"))?;
    producing.await??;

    let out = read_all(
        &env,
        &output,
        N,
        Duration::from_secs(240),
        Duration::from_secs(5),
    )
    .await?;
    assert_exactly_once(&key_counts(&out), N);
    assert_eq!(out.len(), N);
    terminate(&mut first)?;
    terminate(&mut third)
}

/// The two tests that stop Cassandra take turns: each must see its own outage.
static CASSANDRA_OUTAGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A sink config over a fresh table, input topic (3 partitions, `n` cleaned records)
/// and dead-letter topic; with the session and keyspace to count rows.
async fn sink_with_records(
    env: &StackEnv,
    n: usize,
) -> Result<(scylla::client::session::Session, String, std::path::PathBuf)> {
    let (session, keyspace) = create_table(env).await?;
    let (input, dead) = (random_name("cs-in"), random_name("cs-dlq"));
    kafka::create_topic(env, &input, 3).await?;
    kafka::create_topic(env, &dead, 1).await?;
    produce(
        env,
        &input,
        (0..n).map(|n| {
            (
                format!("rightmove:{n}"),
                serde_json::to_vec(&cleaned(n)).unwrap(),
            )
        }),
    )
    .await?;
    let config = write_config(env, "CassandraSink", &sink_spec(&input, &keyspace, &dead))?;
    Ok((session, keyspace, config))
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_killed_and_cassandra_stopped_for_30s_loses_no_row() -> Result<()> {
    let _outage = CASSANDRA_OUTAGE.lock().await;
    let env = StackEnv::load()?;
    const N: usize = 30_000;
    let (session, keyspace, config) = sink_with_records(&env, N).await?;

    // Cassandra stops under a running sink (its writes retry with backoff), the sink
    // is killed during the outage and restarted; Cassandra comes back after 30 s.
    let mut sink = start("sink", &config, "sink-0")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack::stop(Service::Cassandra)?;
    let stopped = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    sink.kill()?;
    sink.wait()?;
    // A sink started during the outage waits for Cassandra rather than exiting.
    let mut sink = start("sink", &config, "sink-0")?;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed())).await;
    assert!(
        sink.try_wait()?.is_none(),
        "the sink exited during the outage"
    );
    stack::start(Service::Cassandra)?;
    eprintln!("Cassandra was down for {:?}.", stopped.elapsed());

    assert_eq!(
        rows_within(&session, &keyspace, N, Duration::from_secs(240)).await?,
        i64::try_from(N)?,
        "rows after recovery"
    );
    terminate(&mut sink)
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_started_while_cassandra_is_down_waits_not_ready_then_writes_every_row() -> Result<()>
{
    let _outage = CASSANDRA_OUTAGE.lock().await;
    let env = StackEnv::load()?;
    const N: usize = 5_000;
    let (session, keyspace, config) = sink_with_records(&env, N).await?;

    stack::stop(Service::Cassandra)?;
    let listen = free_address()?;
    let mut sink = start_listening("sink", &config, "sink-0", &listen)?;
    // Wait until /readyz answers at all, then for a few of the sink's retries.
    while readyz(&listen).await.is_none() {
        assert!(sink.try_wait()?.is_none(), "the sink exited");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        sink.try_wait()?.is_none(),
        "the sink exited without Cassandra"
    );
    assert_eq!(
        readyz(&listen).await,
        Some(503),
        "not ready without Cassandra"
    );
    stack::start(Service::Cassandra)?;

    assert_eq!(
        rows_within(&session, &keyspace, N, Duration::from_secs(180)).await?,
        i64::try_from(N)?,
        "rows once Cassandra is up"
    );
    assert_eq!(readyz(&listen).await, Some(200), "ready once writing");
    terminate(&mut sink)
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_sink_rides_out_s3_stopped_for_30s_and_writes_every_record_once() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, dead_letter) = (random_name("ds-in"), random_name("ds-dlq"));
    kafka::create_topic(&env, &input, 3).await?;
    let location = env.lake.location("delta-outage");
    let spec = delta::delta_spec(&input, &location, &dead_letter);
    delta::create_delta_table(&env, &spec).await?;
    const N: usize = 40_000;
    let config = write_config(&env, "DeltaSink", &spec)?;
    let mut sink = delta::start_delta(&env, &config, "sink-0", &free_address()?)?;
    let listing_records = |range: std::ops::Range<usize>| {
        range.map(|n| {
            (
                format!("rightmove:{n}"),
                serde_json::to_vec(&cleaned(n)).unwrap(),
            )
        })
    };
    produce(&env, &input, listing_records(0..N / 2)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // S3 goes away under a sink with rows in flight; records keep coming meanwhile.
    stack::stop(Service::S3)?;
    let stopped = std::time::Instant::now();
    produce(&env, &input, listing_records(N / 2..N)).await?;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed())).await;
    assert!(
        sink.try_wait()?.is_none(),
        "the sink exited during the outage"
    );
    stack::start(Service::S3)?;
    eprintln!("S3 was down for {:?}.", stopped.elapsed());

    let (rows, distinct) =
        delta::lake_rows_within(&env, &location, N, Duration::from_secs(180)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rows_after, _) = env.lake.count(&location, "listing_key").await?;
    assert_eq!((rows, distinct, rows_after), (N as i64, N as i64, N as i64));
    terminate(&mut sink)
}
