//! Loading the runtime configuration file the operator mounts from a ConfigMap.

use std::path::Path;

use anyhow::{Context, Result};
use homestream_crds::runtime::RuntimeConfig;
use serde::de::DeserializeOwned;

/// Reads and parses the runtime configuration for a spec type `S`.
///
/// # Errors
/// When the file cannot be read or does not match the expected shape (the error names
/// the file and the offending field).
pub fn load<S: DeserializeOwned>(path: &Path) -> Result<RuntimeConfig<S>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading runtime config {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("parsing runtime config {}", path.display()))
}
