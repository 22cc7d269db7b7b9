//! `sink`: (being written: see issue 6).

use std::path::Path;

use anyhow::{Result, bail};

use crate::process::Process;

/// Runs the sink configured in `config`.
///
/// # Errors
/// Always, until it lands.
pub async fn run(_config: &Path, _process: Process) -> Result<()> {
    bail!("the sink subcommand is not implemented yet")
}
