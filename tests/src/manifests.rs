//! Reading the project's YAML manifests (examples, demo) and applying them to the
//! apiserver as a user would with `kubectl apply --server-side`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use homestream_crds::{CassandraSink, DeltaSink, ScrapeJob, StreamTransform};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};

/// The YAML files of a directory (not recursive), sorted.
///
/// # Errors
/// When the directory cannot be read.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "yaml"));
    files.sort();
    Ok(files)
}

/// The documents of a multi-document YAML file (separated by `---` lines).
///
/// # Errors
/// When the file cannot be read or a document does not parse.
pub fn documents(path: &Path) -> Result<Vec<DynamicObject>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_documents(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The documents of a multi-document YAML text, skipping those with only comments.
///
/// # Errors
/// When a document does not parse.
pub fn parse_documents(text: &str) -> Result<Vec<DynamicObject>> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(document) = documents.last_mut() {
            document.push_str(line);
            document.push('\n');
        }
    }
    documents
        .iter()
        .filter(|document| {
            document
                .lines()
                .any(|line| !line.trim().is_empty() && !line.starts_with('#'))
        })
        .map(|document| serde_yaml::from_str(document).map_err(anyhow::Error::from))
        .collect()
}

/// The API of a document's kind (the four homestream kinds and Secrets), in a namespace.
///
/// # Errors
/// For any other kind.
pub fn api_for(
    client: &Client,
    namespace: &str,
    object: &DynamicObject,
) -> Result<Api<DynamicObject>> {
    let kind = object
        .types
        .as_ref()
        .map(|types| types.kind.as_str())
        .unwrap_or_default();
    let resource = match kind {
        "ScrapeJob" => ApiResource::erase::<ScrapeJob>(&()),
        "StreamTransform" => ApiResource::erase::<StreamTransform>(&()),
        "CassandraSink" => ApiResource::erase::<CassandraSink>(&()),
        "DeltaSink" => ApiResource::erase::<DeltaSink>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        other => bail!("no API known for kind {other:?} in the manifests"),
    };
    Ok(Api::namespaced_with(client.clone(), namespace, &resource))
}

/// Server-side applies a document under `manager`; the apiserver's message on refusal.
///
/// # Errors
/// When the apiserver cannot be reached or the kind is unknown.
pub async fn apply(
    client: &Client,
    namespace: &str,
    manager: &str,
    object: &DynamicObject,
) -> Result<Result<(), String>> {
    let api = api_for(client, namespace, object)?;
    let name = object
        .metadata
        .name
        .as_deref()
        .context("document without metadata.name")?;
    match api
        .patch(name, &PatchParams::apply(manager), &Patch::Apply(object))
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(response)) => Ok(Err(response.message)),
        Err(other) => Err(other).with_context(|| format!("applying {name}")),
    }
}
