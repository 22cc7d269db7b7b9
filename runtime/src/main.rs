//! `homestream-runtime`: the entry point of the scraper and transformer images.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use homestream_common::serve::{self, Readiness};
use homestream_common::{shutdown, telemetry};
use homestream_runtime::process::Process;
use homestream_runtime::scrape::browser::BrowserOptions;
use homestream_runtime::{config, scrape, stream};

/// mimalloc rather than the system allocator: a transform allocates and frees a few
/// hundred small values per record (VRL values, keys, strings), which glibc's malloc
/// made a quarter of the transform's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs one homestream component from the configuration the operator wrote.
#[derive(Debug, Parser)]
#[command(name = "homestream-runtime", version, about)]
struct Cli {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(
        long,
        env = "HOMESTREAM_LISTEN",
        default_value = "0.0.0.0:8080",
        global = true
    )]
    listen: SocketAddr,
    /// The runtime configuration file (the operator mounts it from a ConfigMap).
    #[arg(
        long,
        env = "HOMESTREAM_CONFIG",
        default_value = "/etc/homestream/config.yaml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a ScrapeJob once: fetch pages, extract records, publish them to Kafka.
    Scrape {
        #[command(subcommand)]
        preview: Option<ScrapeCommand>,
    },
    /// Run a StreamTransform: consume, apply the VRL program, produce.
    Transform,
    /// Run a CassandraSink (consume and upsert rows into Cassandra) or a DeltaSink
    /// (consume and append rows to a Delta table), as the configuration says.
    Sink,
}

/// What `scrape` does instead of a run in a pod.
#[derive(Debug, Subcommand)]
enum ScrapeCommand {
    /// Run a ScrapeJob manifest (the YAML you would `kubectl apply`) on this machine,
    /// with the same fetchers, address guard and politeness as in the cluster: records
    /// as JSON lines on stdout, each field's filled and missing counts and an example
    /// on stderr. No Kafka, no cluster, no endpoints. Fails when nothing is extracted.
    Preview {
        /// The ScrapeJob manifest (other documents in the file are passed over).
        manifest: PathBuf,
        /// Follow at most this many results pages from each start URL, and visit at
        /// most this many detail pages (below the manifest's own maxPages).
        #[arg(long)]
        max_pages: Option<NonZeroU32>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let (trigger, shutdown) = shutdown::channel();
    trigger.on_signals()?;
    if let Command::Scrape {
        preview:
            Some(ScrapeCommand::Preview {
                manifest,
                max_pages,
            }),
    } = cli.command
    {
        // A person at a terminal: plain log lines, and anyhow's own report of a failure.
        scrape::preview::init_logging();
        let options = scrape::preview::Options {
            manifest,
            max_pages,
        };
        if let Err(error) =
            scrape::preview::preview(&options, shutdown, BrowserOptions::from_env()).await
        {
            // The causes in one line, without the backtrace a returned error would print
            // under RUST_BACKTRACE: the message is for the job's author, not for us.
            eprintln!("Error: {error:#}");
            std::process::exit(1);
        }
        return Ok(());
    }
    telemetry::init_logging();
    let process = Process {
        listener: serve::bind(cli.listen).await?,
        readiness: Readiness::default(),
        shutdown,
    };
    let outcome = match cli.command {
        Command::Scrape { .. } => scrape::run(&cli.config, process).await,
        Command::Transform => stream::transform::run(&cli.config, process).await,
        Command::Sink => match config::kind(&cli.config)?.as_str() {
            "DeltaSink" => stream::delta::run(&cli.config, process).await,
            _ => stream::sink::run(&cli.config, process).await,
        },
    };
    if let Err(error) = &outcome {
        tracing::error!(error = format!("{error:#}"), "Runtime failed.");
    }
    outcome
}
