//! The browser pool's recovery: a Chromium that dies while a page loads is noticed at
//! once, restarted and the page retried, so the run still publishes every record; its launch
//! flags, among them the egress proxy every connection goes through; and a clean run's
//! logs, which hold no warning. In its own test binary because it kills the Chromium
//! children of the test process: the tests here take [`BROWSERS`] so that those
//! children belong to one test at a time.

#[allow(
    dead_code,
    reason = "shared with the integration binary, each using a part"
)]
#[path = "integration/scrape/mod.rs"]
mod scrape;

use std::sync::Arc;
use std::time::{Duration, Instant};

use homestream_common::shutdown;
use homestream_runtime::scrape::crawl::Completion;
use homestream_runtime::scrape::metrics::Metrics;
use homestream_runtime::scrape::output::Collect;

use homestream_common::telemetry::DEFAULT_FILTER;
use scrape::{browser_options, job, manifest, server};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Held by each test while its browsers run: the recovery test kills every Chromium
/// child of this process, which must be its own.
static BROWSERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Process ids of this process's Chromium children (the browsers of the pool).
fn chromium_children() -> Vec<u32> {
    let parent = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // `pid (comm) state ppid ...`: comm may hold spaces, so split after its ')'.
            let Some((comm, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            ppid == Some(parent) && comm.contains("chrom")
        })
        .collect()
}

#[tokio::test]
async fn a_chromium_killed_mid_load_is_restarted_and_every_record_published() {
    let _browsers = BROWSERS.lock().await;
    let server = server::start().await;
    // By name, which the egress proxy resolves and checks.
    let addr = format!("localhost:{}", server.addr.port());
    let job = job(&manifest("site-browser", &addr));
    server.hold_next("/listings/2");
    let metrics = Arc::new(Metrics::default());
    let output = Collect::default();
    let (_trigger, shutdown) = shutdown::channel();
    let run = homestream_runtime::scrape::scrape(
        &job,
        &output,
        metrics.clone(),
        shutdown,
        browser_options(),
    );
    let kill = async {
        // Page 2 is on its way to Chromium: the browser dies mid-load.
        server.held().await;
        let browsers = chromium_children();
        for pid in &browsers {
            let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
            let args: Vec<String> = command_line
                .split(|byte| *byte == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            // Every connection goes through the egress proxy, loopback included.
            assert!(
                args.iter()
                    .any(|arg| arg.starts_with("--proxy-server=socks5://127.0.0.1:")),
                "{args:?}"
            );
            assert!(
                args.iter()
                    .any(|arg| arg == "--proxy-bypass-list=<-loopback>"),
                "{args:?}"
            );
            assert!(args.iter().any(|arg| arg == "--disable-quic"), "{args:?}");
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill {pid}");
        }
        server.release();
        browsers
    };
    let started = Instant::now();
    let (completion, killed) = tokio::join!(run, kill);
    // The page load timeout and the CDP call timeout are both 10s: the dead connection
    // was noticed when it broke, not when a call gave up waiting.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(completion.unwrap(), Completion::Finished);
    assert_eq!(killed.len(), 1, "one browser was running: {killed:?}");
    assert_eq!(metrics.browser_restarts(), 1);
    let records = output.records();
    let keys: Vec<usize> = records.iter().map(|r| r.key.parse().unwrap()).collect();
    assert_eq!(keys, (1..=30).collect::<Vec<_>>());
    assert_eq!(
        records[12].value["_meta"]["sourceUrl"],
        format!("http://{addr}/listings/2")
    );
    assert_eq!(
        records[12].value["price"],
        format!(
            "£{},{:03} pcm",
            server::home_price(13) / 1000,
            server::home_price(13) % 1000
        )
    );
    let totals = metrics.totals();
    assert_eq!((totals.pages_fetched, totals.records_published), (3, 30));
    assert_eq!(server.hits("/listings/2"), 2, "page 2 was loaded again");
    assert!(
        chromium_children().is_empty(),
        "the restarted browser was closed at the end"
    );
}

/// The events at `WARN` or above that reach a subscriber, as text.
#[derive(Clone, Default)]
struct Warnings(Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() <= tracing::Level::WARN {
            let mut message = String::new();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    use std::fmt::Write as _;
                    let _ = write!(message, " {}={value:?}", field.name());
                },
            );
            self.0.lock().unwrap().push(format!(
                "{} {}:{message}",
                metadata.level(),
                metadata.target()
            ));
        }
    }
}

// On one thread, so that the subscriber set for this test sees every task of the runs
// (the pool's and chromiumoxide's) and no other test's.
#[tokio::test(flavor = "current_thread")]
async fn a_clean_browser_run_logs_no_warning_under_the_default_filter() {
    let _browsers = BROWSERS.lock().await;
    let server = server::start().await;
    let addr = server.addr.to_string();
    let warnings = Warnings::default();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new(DEFAULT_FILTER))
        .with(warnings.clone());
    let _logging = tracing::subscriber::set_default(subscriber);
    // Pages, and a page whose script fetches its homes: a request that carries a client
    // security state, whose event chromiumoxide cannot parse (see DEFAULT_FILTER).
    for (name, pages, records) in [("site-browser", 3, 30), ("site-rendered-browser", 1, 10)] {
        let (got, totals, completion) = scrape::scrape(&job(&manifest(name, &addr))).await;
        assert_eq!(completion, Completion::Finished, "{name}");
        assert_eq!(
            (got.len(), totals.pages_fetched),
            (records, pages),
            "{name}"
        );
    }
    let warnings = warnings.0.lock().unwrap();
    assert!(
        warnings.is_empty(),
        "{} warnings: {:#?}",
        warnings.len(),
        &warnings[..warnings.len().min(5)]
    );
}
