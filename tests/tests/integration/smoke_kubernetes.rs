//! Proves the stack's Kubernetes control plane is real: the apiserver serves CRDs and
//! custom resources, and the controller-manager turns a Deployment into a ReplicaSet.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use homestream_tests::{StackEnv, kubernetes};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use serde_json::json;

#[tokio::test]
async fn apiserver_serves_a_custom_resource() -> Result<()> {
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    let suffix = homestream_tests::random_name("smoke").replace('-', "");
    let group = format!("{suffix}.smoke.homestream.io");
    let crd_name = format!("widgets.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": crd_name },
        "spec": {
            "group": group,
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": { "type": "object",
                        "properties": { "size": { "type": "integer", "maximum": 10 } } } }
                } }
            }]
        }
    }))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &crd_name,
        &PatchParams::apply("homestream-smoke").force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("applying the throwaway CRD")?;
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds.clone(), &crd_name, conditions::is_crd_established()),
    )
    .await
    .context("CRD not established in 30s")??;

    let outcome = kubernetes::with_temp_ns(&client, |ns| {
        let client = client.clone();
        let group = group.clone();
        async move {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(&group, "v1", "Widget"),
                "widgets",
            );
            let widgets: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
            let widget: DynamicObject = serde_json::from_value(json!({
                "apiVersion": format!("{group}/v1"), "kind": "Widget",
                "metadata": { "name": "w1" }, "spec": { "size": 3 }
            }))?;
            widgets
                .create(&PostParams::default(), &widget)
                .await
                .context("creating a Widget")?;
            let read = widgets.get("w1").await?;
            assert_eq!(read.data["spec"]["size"], 3);

            // The schema is enforced by the real server.
            let too_big: DynamicObject = serde_json::from_value(json!({
                "apiVersion": format!("{group}/v1"), "kind": "Widget",
                "metadata": { "name": "w2" }, "spec": { "size": 11 }
            }))?;
            let refused = widgets.create(&PostParams::default(), &too_big).await;
            let message = refused.expect_err("size 11 breaks maximum 10").to_string();
            assert!(
                message.contains("spec.size"),
                "unexpected refusal: {message}"
            );
            Ok(())
        }
    })
    .await;
    crds.delete(&crd_name, &Default::default()).await?;
    outcome
}

#[tokio::test]
async fn controller_manager_turns_a_deployment_into_a_replicaset() -> Result<()> {
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "smoke" },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "app": "smoke" } },
                "template": {
                    "metadata": { "labels": { "app": "smoke" } },
                    "spec": { "containers": [{ "name": "c", "image": "example.invalid/smoke:1" }] }
                }
            }
        }))?;
        let created = deployments
            .create(&PostParams::default(), &deployment)
            .await?;
        let uid = created
            .metadata
            .uid
            .context("created deployment has no uid")?;
        wait_for_owned_replicaset(&client, &ns, &uid).await
    })
    .await
}

async fn wait_for_owned_replicaset(client: &Client, ns: &str, owner_uid: &str) -> Result<()> {
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let owned = replicasets
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .any(|rs| {
                rs.metadata
                    .owner_references
                    .unwrap_or_default()
                    .iter()
                    .any(|owner| owner.uid == owner_uid && owner.controller == Some(true))
            });
        if owned {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "no ReplicaSet owned by the Deployment after 30s: is kube-controller-manager running?"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
