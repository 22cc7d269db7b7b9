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
    load_any(path)
}

/// The kind of resource the configuration file is for (`CassandraSink`, `DeltaSink`,
/// ...), read before the spec so that `sink` knows which sink to run.
///
/// # Errors
/// When the file cannot be read or has no `resource.kind`.
pub fn kind(path: &Path) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Resource {
        kind: String,
    }
    #[derive(serde::Deserialize)]
    struct Identity {
        resource: Resource,
    }
    Ok(load_any::<Identity>(path)?.resource.kind)
}

fn load_any<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading runtime config {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("parsing runtime config {}", path.display()))
}
