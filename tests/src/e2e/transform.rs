//! A StreamTransform of a test's world as the tests change and watch it: its program
//! (VRL or SQL), its Deployment's rollout, and its status conditions.

use anyhow::Result;
use homestream_crds::StreamTransform;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::World;

/// Replaces the program of StreamTransform `name`.
///
/// # Errors
/// When the apiserver refuses the patch.
pub async fn set_program(world: &World, name: &str, program: &str) -> Result<()> {
    patch_spec(world, name, json!({"program": program, "sql": null})).await
}

/// Replaces the program of StreamTransform `name` with a SQL `query` reading the
/// text field `id`.
///
/// # Errors
/// When the apiserver refuses the patch.
pub async fn set_sql(world: &World, name: &str, query: &str) -> Result<()> {
    let sql = json!({"query": query, "columns": [{"name": "id", "type": "string"}]});
    patch_spec(world, name, json!({"program": null, "sql": sql})).await
}

async fn patch_spec(world: &World, name: &str, spec: serde_json::Value) -> Result<()> {
    let patch = json!({ "spec": spec });
    world
        .api::<StreamTransform>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The Deployment of StreamTransform `name` once it has rolled out: the pod
/// template's config hash and the names of its pods, when every replica is updated
/// and ready and no old pod is still stopping.
///
/// # Errors
/// When the Deployment or its pods cannot be read.
pub async fn rolled_out(
    world: &World,
    name: &str,
) -> Result<Result<(String, Vec<String>), String>> {
    let deployments: Api<Deployment> = world.api();
    let Some(deployment) = deployments.get_opt(&format!("{name}-transform")).await? else {
        return Ok(Err("no Deployment yet".to_owned()));
    };
    let hash = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("homestream.io/config-hash").cloned())
        .unwrap_or_default();
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    // Stopping pods count: until an old pod's process has exited it may still take records.
    let pods = world.pods_with_terminating(name, "transform").await?;
    let current = pods.iter().all(|pod| {
        pod.annotations().get("homestream.io/config-hash") == Some(&hash)
            && pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    Ok(
        if status.observed_generation == deployment.metadata.generation
            && status.updated_replicas == Some(wanted)
            && pods.len() == wanted as usize
            && current
        {
            Ok((hash, pods.iter().map(ResourceExt::name_any).collect()))
        } else {
            Err(format!("{status:?}; {} pods", pods.len()))
        },
    )
}

/// The condition `type_` of StreamTransform `name`, if it has one yet.
///
/// # Errors
/// When the StreamTransform cannot be read.
pub async fn condition(world: &World, name: &str, type_: &str) -> Result<Option<Condition>> {
    let status = world
        .api::<StreamTransform>()
        .get(name)
        .await?
        .status
        .unwrap_or_default();
    Ok(status.conditions.into_iter().find(|c| c.type_ == type_))
}
