//! homestream's runtime: the processes inside the pods the operator runs.
//!
//! One binary with three subcommands: `scrape` (a ScrapeJob's run), `transform` (a
//! StreamTransform's VRL program between two topics) and `sink` (a CassandraSink's
//! upserts). Each reads its [`RuntimeConfig`](homestream_crds::runtime::RuntimeConfig)
//! from a file, serves `/metrics`, `/healthz` and `/readyz`, logs JSON and stops
//! cleanly on SIGTERM.

pub mod config;
pub mod process;
pub mod scrape;
pub mod stream;
