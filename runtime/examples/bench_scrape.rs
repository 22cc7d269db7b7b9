//! Benchmark of the scraper on the project's fixture site (50 results pages and 500
//! detail pages), driven by `bench/scrape/run.sh`, which runs it beside Scrapy and
//! Playwright for Python and measures each process tree's peak resident memory.
//!
//! `bench_scrape serve` starts the fixture site on loopback and prints its address;
//! `bench_scrape http ADDR` and `bench_scrape browser ADDR` scrape it and print one
//! JSON line with the pages, records and seconds.

#[allow(
    dead_code,
    reason = "the test helpers, of which the benchmark uses a part"
)]
#[path = "../tests/integration/scrape/mod.rs"]
mod scrape;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve"] => runtime.block_on(async {
            let server = scrape::server::start().await;
            println!("{}", server.addr);
            std::future::pending::<()>().await;
        }),
        [mode @ ("http" | "browser"), addr] => runtime.block_on(async {
            let mut job = scrape::job(&scrape::manifest(&format!("bench-{mode}"), addr));
            // Measure the engine, not the politeness limit (the API allows at most 50/s
            // per host): the baselines run unthrottled too.
            job.spec.politeness.requests_per_second_per_host = 1_000.0;
            let started = Instant::now();
            let (records, totals, _) = scrape::scrape(&job).await;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({
                    "tool": format!("homestream {mode}"),
                    "pages": totals.pages_fetched,
                    "records": records.len(),
                    "errors": totals.errors,
                    "seconds": seconds,
                })
            );
        }),
        _ => {
            eprintln!("usage: bench_scrape serve | http ADDR | browser ADDR");
            std::process::exit(2);
        }
    }
}
