//! The DeltaSink against the stack's Kafka and S3 server, read back with DuckDB: every
//! record exactly once as a typed row in a date-partitioned table, bad records in the
//! dead-letter topic with the reason; SIGKILLed and restarted, or two replicas
//! rebalancing, still exactly once; a writer that loses a race leaves files nobody
//! reads, which vacuum removes.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use deltalake::arrow::array::RecordBatch;
use futures::TryStreamExt;
use homestream_crds::DeltaSinkSpec;
use homestream_runtime::stream::delta::rows::Rows;
use homestream_runtime::stream::delta::table::{CommitError, LakeWriter, Writers};
use homestream_tests::lake::Engine;
use homestream_tests::{StackEnv, kafka, random_name};

use crate::stream_support::delta::{create_delta_table, delta_spec, lake_rows_within, start_delta};
use crate::stream_support::{
    cleaned, free_address, produce, read_all, readyz, terminate, write_config,
};

/// `n` cleaned records, keyed by their listing key.
fn records(range: std::ops::Range<usize>) -> impl Iterator<Item = (String, Vec<u8>)> {
    range.map(|n| {
        (
            format!("rightmove:{n}"),
            serde_json::to_vec(&cleaned(n)).unwrap(),
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_record_becomes_one_typed_row_and_bad_ones_are_dead_lettered() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, dead_letter) = (random_name("ds-in"), random_name("ds-dlq"));
    kafka::create_topic(&env, &input, 3).await?;
    kafka::create_topic(&env, &dead_letter, 1).await?;
    let location = env.lake.location("delta-sink");
    let spec = delta_spec(&input, &location, &dead_letter);
    create_delta_table(&env, &spec).await?;
    const N: usize = 20_000;
    let mut poison = cleaned(0);
    poison["listing_key"] = "rightmove:poison-deposit".into();
    poison["deposit"] = "a lot".into();
    let mut keyless = cleaned(1);
    keyless.as_object_mut().unwrap().remove("listing_key");
    let bad = vec![
        ("not-json".to_owned(), b"{not json".to_vec()),
        ("keyless".to_owned(), serde_json::to_vec(&keyless)?),
        ("poison-deposit".to_owned(), serde_json::to_vec(&poison)?),
    ];
    produce(
        &env,
        &input,
        records(0..N / 2).chain(bad).chain(records(N / 2..N)),
    )
    .await?;

    let config = write_config(&env, "DeltaSink", &spec)?;
    let listen = free_address()?;
    let mut sink = start_delta(&env, &config, &random_name("instance"), &listen)?;
    let (rows, distinct) = lake_rows_within(&env, &location, N, Duration::from_secs(120)).await?;
    assert_eq!(
        (rows, distinct),
        (N as i64, N as i64),
        "rows and distinct keys in the table"
    );
    assert_eq!(readyz(&listen).await, Some(200));

    let dead = read_all(
        &env,
        &dead_letter,
        3,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await?;
    let reasons: BTreeMap<String, String> = dead
        .iter()
        .map(|read| {
            (
                read.key.clone().unwrap_or_default(),
                read.headers["homestream.error"].clone(),
            )
        })
        .collect();
    assert!(
        reasons["not-json"].starts_with("payload is not JSON"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons["keyless"],
        "required column listing_key has no value"
    );
    assert!(reasons["poison-deposit"].contains("a lot"), "{reasons:?}");
    assert_eq!(dead.len(), 3);

    let typed = env
        .lake
        .query(
            Engine::DuckDb,
            &format!(
                "SELECT monthly_price_minor AS price, CAST(deposit AS VARCHAR) AS deposit, furnished, \
                 CAST(available AS VARCHAR) AS available, tags[2] AS tag, rooms['bedroom'] AS bedrooms, \
                 CAST(scraped_at AS VARCHAR) AS scraped_at, CAST(scraped_date AS VARCHAR) AS scraped_date \
                 FROM delta_scan('{location}') WHERE listing_key = 'rightmove:42'"
            ),
        )
        .await?;
    assert_eq!(
        typed,
        [serde_json::json!({
            "price": 273_042, "deposit": "3150.50", "furnished": true, "available": "2026-06-01",
            "tag": "pets", "bedrooms": 2, "scraped_at": "2026-05-14 09:30:00+00",
            "scraped_date": "2026-05-14",
        })]
    );
    terminate(&mut sink)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_stream_and_restarted_the_table_holds_every_record_once() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, dead_letter) = (random_name("ds-in"), random_name("ds-dlq"));
    kafka::create_topic(&env, &input, 3).await?;
    let location = env.lake.location("delta-kill");
    let spec = delta_spec(&input, &location, &dead_letter);
    create_delta_table(&env, &spec).await?;
    const N: usize = 150_000;
    produce(&env, &input, records(0..N)).await?;
    let config = write_config(&env, "DeltaSink", &spec)?;
    let instance = random_name("instance");

    // Each run is killed as soon as the table shows it committed something more, so
    // every kill lands mid-stream with rows written and not yet committed.
    let mut committed_at_kills = Vec::new();
    let mut committed: i64 = 0;
    for _ in 0..3 {
        let mut sink = start_delta(&env, &config, &instance, &free_address()?)?;
        let more = usize::try_from(committed)? + 1;
        committed = lake_rows_within(&env, &location, more, Duration::from_secs(120))
            .await?
            .0;
        sink.kill()?;
        sink.wait()?;
        committed_at_kills.push(committed);
    }
    let mut sink = start_delta(&env, &config, &instance, &free_address()?)?;
    let (rows, distinct) = lake_rows_within(&env, &location, N, Duration::from_secs(180)).await?;
    // A last look after the sink had time to write anything twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rows_after, _) = env.lake.count(&location, "listing_key").await?;
    assert_eq!((rows, distinct, rows_after), (N as i64, N as i64, N as i64));
    assert!(
        committed_at_kills
            .iter()
            .all(|rows| *rows > 0 && *rows < N as i64),
        "every kill must land mid-stream, after some commits: {committed_at_kills:?}"
    );
    terminate(&mut sink)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_rebalancing_leave_every_record_once() -> Result<()> {
    let env = StackEnv::load()?;
    let (input, dead_letter) = (random_name("ds-in"), random_name("ds-dlq"));
    kafka::create_topic(&env, &input, 4).await?;
    let location = env.lake.location("delta-replicas");
    let spec = delta_spec(&input, &location, &dead_letter);
    create_delta_table(&env, &spec).await?;
    const N: usize = 60_000;
    let config = write_config(&env, "DeltaSink", &spec)?;
    let mut first = start_delta(&env, &config, "replica-a", &free_address()?)?;
    let mut second = start_delta(&env, &config, "replica-b", &free_address()?)?;
    produce(&env, &input, records(0..N / 2)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One replica dies without a word; its partitions move after the session times
    // out, while a third replica joins and takes some of them.
    first.kill()?;
    first.wait()?;
    let mut third = start_delta(&env, &config, "replica-c", &free_address()?)?;
    produce(&env, &input, records(N / 2..N)).await?;
    let (rows, distinct) = lake_rows_within(&env, &location, N, Duration::from_secs(180)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rows_after, _) = env.lake.count(&location, "listing_key").await?;
    assert_eq!((rows, distinct, rows_after), (N as i64, N as i64, N as i64));
    terminate(&mut second)?;
    terminate(&mut third)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_that_loses_the_race_leaves_files_no_reader_sees_until_vacuum_removes_them()
-> Result<()> {
    let env = StackEnv::load()?;
    let location = env.lake.location("delta-race");
    let spec = delta_spec("race-input", &location, "race-dead");
    let table = create_delta_table(&env, &spec).await?;
    let validated = serde_json::from_value::<DeltaSinkSpec>(spec)?.validate()?;
    let writers = Writers {
        namespace: "test".into(),
        name: "race".into(),
        topic: "race-input".into(),
    };
    // Two writers hold partition 0 at once: a new owner, and a zombie that has not
    // noticed the rebalance. Both read the table before either commits.
    let mut winner = LakeWriter::new(table.clone(), writers.clone())?;
    let mut loser = LakeWriter::new(table, writers)?;
    let batch = |writer: &LakeWriter, range: std::ops::Range<usize>| -> Result<RecordBatch> {
        let rows = Rows::new(validated.columns.clone(), writer.arrow_schema());
        let projected: Vec<_> = range
            .map(|n| rows.project(&serde_json::to_vec(&cleaned(n)).unwrap()))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        Ok(rows.decode(&projected)?.0.expect("rows"))
    };
    let offsets = BTreeMap::from([(0, 99)]);
    winner.write(batch(&winner, 0..100)?).await?;
    loser.write(batch(&loser, 0..100)?).await?;
    let winner_staged = winner.stage(&offsets).await?;
    let loser_staged = loser.stage(&offsets).await?;
    winner.commit(&winner_staged, &offsets).await?;
    let lost = loser.commit(&loser_staged, &offsets).await;
    assert!(matches!(lost, Err(CommitError::Conflict(_))), "{lost:?}");

    // The loser's files are in the bucket, yet readers see the winner's rows only.
    let table = homestream_common::lake::open(
        &validated.location,
        crate::stream_support::delta::storage_options(&env),
    )
    .await?
    .expect("the table");
    let parquet_files: Vec<_> = table
        .object_store()
        .list(None)
        .try_filter(|meta| std::future::ready(meta.location.as_ref().ends_with(".parquet")))
        .try_collect()
        .await?;
    assert_eq!(
        parquet_files.len(),
        2,
        "the winner's file and the orphan: {parquet_files:?}"
    );
    assert_eq!(env.lake.count(&location, "listing_key").await?, (100, 100));
    let glob = env
        .lake
        .query(Engine::DuckDb, &format!("SELECT count(*) AS files FROM (SELECT DISTINCT filename FROM read_parquet('{location}/**/*.parquet', filename = true))"))
        .await?;
    assert_eq!(
        glob[0]["files"], 2,
        "a bare Parquet glob would see both files"
    );
    assert_eq!(winner.committed_offset(0).await?, Some(99));

    // Vacuum (here without the hour of retention a spec must keep) removes the orphan
    // and nothing the table refers to.
    assert_eq!(winner.vacuum(std::time::Duration::ZERO).await?, 1);
    assert_eq!(env.lake.count(&location, "listing_key").await?, (100, 100));
    Ok(())
}
