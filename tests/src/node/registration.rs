//! Registering the Node and keeping it alive: a Ready condition and a Lease in
//! `kube-node-lease` renewed every few seconds, as the node lifecycle controller expects
//! (without them it taints the node and evicts its pods).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

/// Field manager of the node's writes.
pub const MANAGER: &str = "homestream-local-node";
/// How often the node reports that it is alive.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Creates or updates the Node `name` (capacity of this machine) and reports it Ready.
///
/// # Errors
/// When the apiserver refuses.
pub async fn register(client: &Client, name: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/hostname".to_owned(), name.to_owned()),
                ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                ("homestream.io/local-node".to_owned(), "true".to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    nodes
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&node),
        )
        .await
        .with_context(|| format!("registering node {name}"))?;
    report_ready(client, name).await
}

async fn report_ready(client: &Client, name: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = Timestamp::now().to_string();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let status = json!({
        "apiVersion": "v1", "kind": "Node",
        "status": {
            "capacity": { "cpu": cpus.to_string(), "memory": "16Gi", "pods": "110" },
            "allocatable": { "cpu": cpus.to_string(), "memory": "16Gi", "pods": "110" },
            "addresses": [
                { "type": "InternalIP", "address": "127.0.0.1" },
                { "type": "Hostname", "address": name }
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "LocalNodeReady",
                "message": "homestream local node runs homestream runtime pods as processes",
                "lastHeartbeatTime": now, "lastTransitionTime": now
            }],
            "nodeInfo": {
                "architecture": std::env::consts::ARCH, "operatingSystem": "linux",
                "kubeletVersion": "homestream-local-node", "kubeProxyVersion": "",
                "containerRuntimeVersion": "process://local", "kernelVersion": "", "osImage": "",
                "machineID": name, "systemUUID": name, "bootID": name
            }
        }
    });
    nodes
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&status),
        )
        .await
        .with_context(|| format!("reporting node {name} ready"))?;
    Ok(())
}

async fn renew_lease(client: &Client, name: &str) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await?;
    Ok(())
}

/// Reports the node alive every 10 s, forever; a failed beat is logged and retried.
pub async fn heartbeat(client: Client, name: String) {
    loop {
        if let Err(error) = renew_lease(&client, &name).await {
            tracing::warn!(%error, "Could not renew the node lease.");
        }
        if let Err(error) = report_ready(&client, &name).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "Could not report the node ready."
            );
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}
