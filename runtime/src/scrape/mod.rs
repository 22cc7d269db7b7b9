//! `scrape`: runs a ScrapeJob once. (Being written: see issue 5.)

use std::path::Path;

use anyhow::{Result, bail};

use crate::process::Process;

/// Runs the ScrapeJob configured in `config`.
///
/// # Errors
/// Always, until the scraper lands.
pub async fn run(_config: &Path, _process: Process) -> Result<()> {
    bail!("the scrape subcommand is not implemented yet")
}
