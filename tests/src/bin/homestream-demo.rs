//! `homestream-demo`: the two halves of `make demo` that need more than a shell.
//!
//!   homestream-demo site --listen ADDR [--api-key KEY]   serve the demo listings site
//!   homestream-demo run --namespace NS --site URL [--timeout SECONDS]
//!       apply the demo pipeline, wait until every resource is Ready and every listing
//!       has landed in Cassandra and in the Delta table, and print what happened
//!   homestream-demo cql "SELECT ..."   run one CQL statement, print its rows (cqlsh-like)

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use homestream_tests::demo::observe::{self, ListingRow};
use homestream_tests::demo::{homes, pipeline, site};
use homestream_tests::lake::Engine;
use homestream_tests::{StackEnv, kubernetes};
use kube::ResourceExt;
use kube::api::DynamicObject;

/// The ScrapeJob applied once the rest of the pipeline is Ready.
const LATE_JOB: &str = "london-rentals";
/// The keyspace of the example sinks.
const KEYSPACE: &str = "homestream";

fn usage() -> ! {
    eprintln!(
        "usage: homestream-demo site --listen ADDR [--api-key KEY]\n       \
         homestream-demo run --namespace NS --site URL [--timeout SECONDS]\n       \
         homestream-demo cql STATEMENT"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| usage());
    if command == "cql" {
        let statement = args.next().unwrap_or_else(|| usage());
        return cql(&statement).await;
    }
    let mut flags = HashMap::new();
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        flags.insert(flag, value);
    }
    let flag = |name: &str| flags.get(name).cloned();
    match command.as_str() {
        "site" => {
            let listen: SocketAddr = flag("--listen")
                .unwrap_or_else(|| usage())
                .parse()
                .context("--listen")?;
            let api_key = flag("--api-key").unwrap_or_else(|| pipeline::API_KEY.to_owned());
            let site = site::start(listen, &api_key).await?;
            tracing::info!(url = %site.url("/"), "The demo site is up.");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        "run" => {
            let namespace = flag("--namespace").unwrap_or_else(|| usage());
            let site = flag("--site").unwrap_or_else(|| usage());
            let timeout = flag("--timeout")
                .map_or(Ok(600), |t| t.parse())
                .context("--timeout")?;
            run(&namespace, &site, Duration::from_secs(timeout)).await
        }
        _ => usage(),
    }
}

/// Runs `statement` and prints its rows, one line each, columns separated by " | ".
async fn cql(statement: &str) -> Result<()> {
    let session = observe::cassandra(&StackEnv::load()?).await?;
    let result = session.query_unpaged(statement, &[]).await?;
    let Ok(rows) = result.into_rows_result() else {
        println!("OK");
        return Ok(());
    };
    let names: Vec<&str> = rows.column_specs().iter().map(|c| c.name()).collect();
    println!("{}", names.join(" | "));
    let mut count = 0;
    for row in rows.rows::<scylla::value::Row>()? {
        let values: Vec<String> = row?
            .columns
            .iter()
            .map(|value| {
                value
                    .as_ref()
                    .map_or_else(|| "null".to_owned(), observe::cql_text)
            })
            .collect();
        println!("{}", values.join(" | "));
        count += 1;
    }
    println!("({count} rows)");
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Applies the pipeline, waits for every row and every Ready, prints the outcome.
async fn run(namespace: &str, site: &str, timeout: Duration) -> Result<()> {
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    let session = observe::cassandra(&env).await?;
    let objects = pipeline::objects(site, None)?;
    let expected = homes::LONDON_HOMES + homes::LA_HOMES;

    // The browser ScrapeJob goes in once the rest of the pipeline is Ready, so its rows
    // show the latency of a running pipeline; the REST job's rows include the start of
    // the transform and sinks (pods starting, consumer groups forming).
    let (late, early): (Vec<DynamicObject>, Vec<DynamicObject>) = objects
        .iter()
        .cloned()
        .partition(|object| object.name_any() == LATE_JOB);
    let started = Instant::now();
    let started_ms = now_ms();
    pipeline::apply(&client, namespace, &early).await?;
    println!(
        "Applied {} objects to namespace {namespace} ({LATE_JOB} follows once the others are \
         Ready); waiting for {expected} listings in Cassandra ({KEYSPACE}.listings).",
        early.len()
    );

    // When each listing was first seen in Cassandra, and how long after its page was
    // fetched. Rows of an earlier run (scraped before this one started) do not count.
    let mut landed: HashMap<(String, String), (Duration, i64)> = HashMap::new();
    let mut late_applied = false;
    let mut last_report = Instant::now();
    let readiness = loop {
        let rows = observe::listing_rows(&session, KEYSPACE)
            .await
            .unwrap_or_default();
        let seen_ms = now_ms();
        for row in rows.iter().filter(|r| r.scraped_at_ms >= Some(started_ms)) {
            landed
                .entry((row.source.clone(), row.listing_id.clone()))
                .or_insert((
                    started.elapsed(),
                    seen_ms - row.scraped_at_ms.unwrap_or(seen_ms),
                ));
        }
        let readiness = observe::readiness(&client, namespace).await?;
        let not_ready = observe::not_ready(&readiness);
        if !late_applied && readiness.len() == early.len() - 1 && not_ready.is_empty() {
            pipeline::apply(&client, namespace, &late).await?;
            println!(
                "  [{:>3}s] the pipeline is Ready; applied ScrapeJob {LATE_JOB}",
                started.elapsed().as_secs()
            );
            late_applied = true;
            continue;
        }
        if late_applied && landed.len() >= expected && not_ready.is_empty() {
            break readiness;
        }
        if let Some(failed) = readiness.iter().find(|r| r.reason.starts_with("RunFailed")) {
            bail!(
                "ScrapeJob {} failed ({}); its pod's log: kubectl logs -n {namespace} \
                 -l app.kubernetes.io/instance={},app.kubernetes.io/component=scrape --tail=-1",
                failed.name,
                failed.reason,
                failed.name
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "after {timeout:?}: {} of {expected} listings landed; not ready: {}",
                landed.len(),
                not_ready.join("; ")
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!(
                "  [{:>3}s] {}/{expected} listings; waiting for: {}",
                started.elapsed().as_secs(),
                landed.len(),
                if not_ready.is_empty() {
                    "rows".to_owned()
                } else {
                    not_ready.join("; ")
                }
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    print_timings(&landed);
    println!("\nResources:");
    for r in &readiness {
        println!(
            "  {:<16} {:<20} Ready={} {}",
            r.kind, r.name, r.status, r.reason
        );
    }
    println!("\nRecords per topic (read_committed; earlier demo runs included):");
    for topic in pipeline::topics(&objects) {
        let count = observe::committed_records(&env, &topic).await?.len();
        println!("  {topic:<36} {count:>6}");
    }
    let mut rows = observe::listing_rows(&session, KEYSPACE).await?;
    let total = rows.len();
    rows.retain(|row| row.scraped_at_ms >= Some(started_ms));
    println!(
        "\nA sample of {KEYSPACE}.listings ({} rows written by this run, {total} in all):",
        rows.len()
    );
    print_sample(&rows);
    show_lake(
        &env,
        &objects,
        started_ms,
        expected,
        timeout.saturating_sub(started.elapsed()),
    )
    .await
}

/// Waits until the DeltaSink has committed this run's listings to its table (a commit
/// every `flush.interval`), then prints what an analyst's engine (DuckDB here; Trino
/// and Athena read the same table) sees in it.
async fn show_lake(
    env: &StackEnv,
    objects: &[DynamicObject],
    started_ms: i64,
    expected: usize,
    timeout: Duration,
) -> Result<()> {
    let location = objects
        .iter()
        .find_map(|object| object.data["spec"]["table"]["location"].as_str())
        .context("the pipeline has no DeltaSink")?;
    let since = chrono::DateTime::from_timestamp_millis(started_ms)
        .context("the start time")?
        .format("%Y-%m-%d %H:%M:%S%.3f");
    let this_run = format!(
        "SELECT count(DISTINCT listing_key) AS listings FROM delta_scan('{location}') \
         WHERE scraped_at >= TIMESTAMPTZ '{since}+00'"
    );
    let deadline = Instant::now() + timeout;
    loop {
        let rows = env.lake.query(Engine::DuckDb, &this_run).await?;
        let landed = rows
            .first()
            .and_then(|row| row["listings"].as_u64())
            .unwrap_or(0);
        if usize::try_from(landed)? >= expected {
            break;
        }
        if Instant::now() > deadline {
            bail!("{landed} of {expected} listings of this run are in the Delta table {location}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let query = format!(
        "SELECT scraped_date, source, count(*) AS listings, \
         CAST(round(avg(monthly_price_minor) / 100) AS BIGINT) AS avg_monthly_price \
         FROM delta_scan('{location}') GROUP BY ALL ORDER BY ALL"
    );
    println!(
        "\nThe Delta table {location} (every run's rows; DuckDB reads it as Athena or Trino would):"
    );
    println!("$ $HOMESTREAM_LAKE_PYTHON tests/env/lake/query.py duckdb \"{query}\"");
    println!(
        "  {:<12} {:<12} {:>9} {:>18}",
        "scraped_date", "source", "listings", "avg_monthly_price"
    );
    for row in env.lake.query(Engine::DuckDb, &query).await? {
        let text = |key: &str| row[key].to_string().trim_matches('"').to_owned();
        println!(
            "  {:<12} {:<12} {:>9} {:>18}",
            text("scraped_date"),
            text("source"),
            text("listings"),
            text("avg_monthly_price")
        );
    }
    Ok(())
}

fn print_timings(landed: &HashMap<(String, String), (Duration, i64)>) {
    let mut arrivals: Vec<Duration> = landed.values().map(|(at, _)| *at).collect();
    arrivals.sort();
    println!(
        "\nFirst row {:.1} s after the apply, all {} rows after {:.1} s.",
        arrivals[0].as_secs_f64(),
        arrivals.len(),
        arrivals[arrivals.len() - 1].as_secs_f64()
    );
    println!("Page fetched -> row seen in Cassandra (rows polled every 250 ms):");
    let mut per_source: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for ((source, _), (_, latency)) in landed {
        per_source.entry(source).or_default().push(*latency);
    }
    for (source, mut latencies) in per_source {
        latencies.sort_unstable();
        let at = |p: usize| latencies[(latencies.len() - 1) * p / 100];
        let when = if source == LATE_JOB {
            "applied once the pipeline was Ready"
        } else {
            "applied with the pipeline: includes its start"
        };
        println!(
            "  {source:<15} {:>3} rows  p50 {:>5} ms  max {:>5} ms  ({when})",
            latencies.len(),
            at(50),
            at(100)
        );
    }
}

fn print_sample(rows: &[ListingRow]) {
    println!(
        "  {:<15} {:<11} {:>9} {:<11} {:>4} {:>5} {:<8} address",
        "source", "listing_id", "monthly", "label", "beds", "baths", "outward"
    );
    let mut per_source: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        let shown = per_source.entry(row.source.as_str()).or_default();
        if *shown == 4 {
            continue;
        }
        *shown += 1;
        let show = |value: Option<String>| value.unwrap_or_else(|| "null".to_owned());
        println!(
            "  {:<15} {:<11} {:>9} {:<11} {:>4} {:>5} {:<8} {}",
            row.source,
            row.listing_id,
            show(row.monthly_price_minor.map(|m| m.to_string())),
            show(row.price_label.clone()),
            show(row.beds.map(|b| b.to_string())),
            show(row.baths.map(|b| b.to_string())),
            show(row.outward_code.clone()),
            show(row.address.clone())
        );
    }
}
