//! The sink against the stack's Kafka and Cassandra: N records in, N rows with every
//! CQL type converted; records that cannot be rows in the dead-letter topic with the
//! reason; a replay never overwrites newer data; `batchRows: 1` writes row by row.

use std::time::Duration;

use crate::stream_support::{
    cleaned, command, create_table, produce, read_all, rows_within, sink_spec, start, terminate,
    write_config,
};
use anyhow::Result;
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn writes_every_record_as_a_row_and_dead_letters_bad_ones() -> Result<()> {
    let env = StackEnv::load()?;
    let (session, keyspace) = create_table(&env).await?;
    let (input, dead) = (random_name("cs-in"), random_name("cs-dlq"));
    kafka::create_topic(&env, &input, 3).await?;
    kafka::create_topic(&env, &dead, 1).await?;
    const N: usize = 2_000;
    let mut records: Vec<(String, Vec<u8>)> = (0..N)
        .map(|n| {
            (
                format!("rightmove:{n}"),
                serde_json::to_vec(&cleaned(n)).unwrap(),
            )
        })
        .collect();
    let mut bad_beds = cleaned(N + 1);
    bad_beds["beds"] = json!("many");
    records.push(("bad-beds".into(), serde_json::to_vec(&bad_beds)?));
    let mut no_key = cleaned(N + 2);
    no_key["listing_key"] = Value::Null;
    records.push(("no-key".into(), serde_json::to_vec(&no_key)?));
    // Rows Cassandra refuses (a partition key over 64 KiB), each right after a good
    // record of its partition, so that it shares that record's batch: the batch is
    // refused, and its good rows must still be written.
    const TOO_LONG: [usize; 3] = [500, 1000, 1500];
    for n in TOO_LONG {
        let mut too_long = cleaned(N + 3 + n);
        too_long["listing_key"] = json!("k".repeat(70_000));
        let at = records
            .iter()
            .position(|(key, _)| *key == format!("rightmove:{n}"))
            .unwrap();
        records.insert(
            at + 1,
            (format!("rightmove:{n}"), serde_json::to_vec(&too_long)?),
        );
    }
    let produced_from = unix_micros();
    produce(&env, &input, records).await?;
    let produced_until = unix_micros();

    let config = write_config(&env, "CassandraSink", &sink_spec(&input, &keyspace, &dead))?;
    let mut sink = start("sink", &config, "sink-0")?;

    let dead_lettered = read_all(
        &env,
        &dead,
        2 + TOO_LONG.len(),
        Duration::from_secs(60),
        Duration::from_secs(1),
    )
    .await?;
    let reason = |key: &str| {
        dead_lettered
            .iter()
            .find(|read| read.key.as_deref() == Some(key))
            .unwrap()
            .headers["homestream.error"]
            .clone()
    };
    assert_eq!(
        reason("bad-beds"),
        "column beds: \"many\" is not a valid int: expected an integer"
    );
    assert_eq!(
        reason("no-key"),
        "key column listing_key is missing or null"
    );
    let refused: Vec<&str> = dead_lettered
        .iter()
        .filter(|read| {
            read.payload["listing_key"]
                .as_str()
                .is_some_and(|key| key.len() == 70_000)
        })
        .map(|read| read.headers["homestream.error"].as_str())
        .collect();
    assert_eq!(refused.len(), TOO_LONG.len(), "{refused:?}");
    for reason in refused {
        assert!(
            reason.contains("Key length of 70000 is longer than maximum of 65535"),
            "{reason}"
        );
    }

    assert_eq!(
        rows_within(&session, &keyspace, N, Duration::from_secs(60)).await?,
        i64::try_from(N)?
    );
    let row = session
        .query_unpaged(
            format!(
                "SELECT monthly_price_minor, beds, CAST(deposit AS text), furnished, CAST(scraped_at AS text), \
                 CAST(available AS text), tags, rooms FROM {keyspace}.listings WHERE listing_key = 'rightmove:7'"
            ),
            &[],
        )
        .await?
        .into_rows_result()?
        .single_row::<(i64, i32, String, bool, String, String, Vec<String>, std::collections::BTreeMap<String, i32>)>()?;
    assert_eq!(row.0, 273_007);
    assert_eq!(row.1, 3);
    assert_eq!(row.2, "3150.50");
    assert!(!row.3);
    assert!(row.4.starts_with("2026-05-14T09:30:00"), "{}", row.4);
    assert_eq!(row.5, "2026-06-01");
    assert_eq!(row.6, vec!["garden", "pets"]);
    assert_eq!(row.7["bedroom"], 2);

    // The write time is the Kafka record time: an older record replayed later loses.
    let (writetime,) = session
        .query_unpaged(format!("SELECT WRITETIME(address) FROM {keyspace}.listings WHERE listing_key = 'rightmove:7'"), &[])
        .await?
        .into_rows_result()?
        .single_row::<(i64,)>()?;
    // The record time, when it was produced (the sink started later): in an unlogged
    // batch as in a lone insert, each row keeps its own.
    assert!(
        (produced_from..=produced_until).contains(&writetime),
        "{writetime} not in {produced_from}..={produced_until}"
    );
    let producer: rdkafka::producer::FutureProducer = kafka::client_config(&env).create()?;
    let mut stale = cleaned(7);
    stale["address"] = json!("stale replay");
    let stale = serde_json::to_vec(&stale)?;
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&input)
                .key("rightmove:7")
                .payload(&stale)
                .timestamp(writetime / 1000 - 60_000),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (address,) = session
        .query_unpaged(
            format!("SELECT address FROM {keyspace}.listings WHERE listing_key = 'rightmove:7'"),
            &[],
        )
        .await?
        .into_rows_result()?
        .single_row::<(String,)>()?;
    assert_eq!(address, "7 Acton Street, London");

    terminate(&mut sink)
}

/// Now, in microseconds since the epoch, as Cassandra counts write times (rounded
/// down to the millisecond, as Kafka's record times are).
fn unix_micros() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap() * 1000
}

/// Proves: with `batchRows: 1` every row is its own write: rows Cassandra refuses are
/// dead-lettered without a batch to fall back from, and every other row is written;
/// with the default, the same records do share batches (the sink logs falling back
/// from a refused batch), so the difference is the setting's.
#[tokio::test(flavor = "multi_thread")]
async fn with_batch_rows_one_every_row_is_a_write_of_its_own() -> Result<()> {
    const N: usize = 300;
    const TOO_LONG: [usize; 5] = [50, 100, 150, 200, 250];
    let env = StackEnv::load()?;
    let input = random_name("cs-rows-in");
    kafka::create_topic(&env, &input, 1).await?;
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for n in 0..N {
        records.push((format!("rightmove:{n}"), serde_json::to_vec(&cleaned(n))?));
        if TOO_LONG.contains(&n) {
            let mut too_long = cleaned(n);
            too_long["listing_key"] = json!("k".repeat(70_000));
            records.push((format!("too-long:{n}"), serde_json::to_vec(&too_long)?));
        }
    }
    produce(&env, &input, records).await?;

    let mut logs = Vec::new();
    for batch_rows in [None, Some(1)] {
        let (session, keyspace) = create_table(&env).await?;
        let dead = random_name("cs-rows-dlq");
        kafka::create_topic(&env, &dead, 1).await?;
        let mut spec = sink_spec(&input, &keyspace, &dead);
        spec["input"]["startFrom"] = json!("Earliest");
        if let Some(rows) = batch_rows {
            spec["batchRows"] = json!(rows);
        }
        let config = write_config(&env, "CassandraSink", &spec)?;
        let log = config.with_file_name("sink.log");
        let mut sink = command("sink", &config, &random_name("sink"), "127.0.0.1:0")
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let dead_lettered = read_all(
            &env,
            &dead,
            TOO_LONG.len(),
            Duration::from_secs(60),
            Duration::from_secs(1),
        )
        .await?;
        assert_eq!(dead_lettered.len(), TOO_LONG.len(), "{batch_rows:?}");
        assert_eq!(
            rows_within(&session, &keyspace, N, Duration::from_secs(60)).await?,
            i64::try_from(N)?,
            "{batch_rows:?}"
        );
        terminate(&mut sink)?;
        logs.push(std::fs::read_to_string(&log)?);
    }
    let fell_back = |log: &str| log.contains("Cassandra refused a batch");
    assert!(fell_back(&logs[0]), "the default batches rows: {}", logs[0]);
    assert!(
        !fell_back(&logs[1]),
        "batchRows 1 never batches: {}",
        logs[1]
    );
    Ok(())
}
