//! The durable record of the topics and tables the operator created for a resource, so
//! that `deletionPolicy: Delete` deletes those and never a topic or table that existed
//! before (made by hand, by another tool, or by another resource).
//!
//! The record is an annotation on the resource itself ([`TOPICS`], [`TABLES`]), written
//! by server-side apply under the operator's field manager right after Kafka or
//! Cassandra or object storage confirmed the creation. It lives as long as the resource (through operator
//! restarts and leader changes), is there when the finalizer runs, and is not in
//! `status`, which the API conventions want reconstructable from observation (a backup
//! restored without status must not turn "created by us" into "not ours"). A crash
//! between creating and recording leaves the topic or table unrecorded: the safe side,
//! it is retained rather than deleted.

use std::collections::BTreeSet;
use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{Context, Error, FIELD_MANAGER};

/// Comma-separated names of the topics the operator created for the resource.
pub const TOPICS: &str = "homestream.io/created-topics";
/// The `keyspace.table` the operator created for a CassandraSink, or the location
/// (`s3://bucket/prefix`, which holds no comma) of the Delta table it created for a
/// DeltaSink.
pub const TABLES: &str = "homestream.io/created-tables";

/// What is recorded under `annotation` (one of [`TOPICS`], [`TABLES`]) for `resource`.
pub fn recorded<K: Resource>(resource: &K, annotation: &str) -> BTreeSet<String> {
    resource
        .annotations()
        .get(annotation)
        .map(|names| {
            names
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Adds `created` to the record under `annotation` of `resource` (a no-op when nothing
/// is new).
///
/// # Errors
/// When the apiserver refuses the patch.
pub async fn record<K>(
    ctx: &Context,
    resource: &K,
    annotation: &str,
    created: &[String],
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let mut names = recorded(resource, annotation);
    let before = names.len();
    names.extend(created.iter().cloned());
    if names.len() == before {
        return Ok(());
    }
    let names: Vec<String> = names.into_iter().collect();
    let api: Api<K> = Api::namespaced(
        ctx.client.clone(),
        &resource.namespace().unwrap_or_default(),
    );
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": resource.name_any(),
            "annotations": { annotation: names.join(",") },
        },
    });
    api.patch(
        &resource.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestream_crds::ScrapeJob;

    #[test]
    fn the_record_is_read_from_the_annotation() {
        let mut job: ScrapeJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "homestream.io/v1alpha1", "kind": "ScrapeJob",
            "metadata": { "name": "a", "annotations": { TOPICS: "b.raw,a.raw" } },
            "spec": {
                "source": { "http": { "url": "https://api.example.com/listings" } },
                "extract": {
                    "items": { "json": { "path": "$.results[*]" } },
                    "fields": [ { "name": "id", "jsonPath": "$.id" } ],
                    "key": "id"
                },
                "output": { "topic": { "name": "a.raw" } }
            }
        }))
        .unwrap();
        assert_eq!(
            recorded(&job, TOPICS).into_iter().collect::<Vec<_>>(),
            ["a.raw", "b.raw"]
        );
        assert!(recorded(&job, TABLES).is_empty());
        job.metadata.annotations = None;
        assert!(recorded(&job, TOPICS).is_empty());
    }
}
