//! Reading a Deployment's status into the `WorkloadReady` condition and a rollout message.

use homestream_crds::conditions::WORKLOAD_READY;
use k8s_openapi::api::apps::v1::Deployment;

use crate::status::Observed;

/// What a Deployment's status says: the condition, the rollout still under way (if
/// any) and the ready replicas.
pub fn deployment(
    deployment: Option<&Deployment>,
    replicas: u32,
) -> (Observed, Option<String>, i32) {
    let Some(deployment) = deployment else {
        return (
            Observed::failed(
                WORKLOAD_READY,
                "Pending",
                "the Deployment is not created yet",
            ),
            Some("creating the Deployment".to_owned()),
            0,
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = i32::try_from(replicas).unwrap_or(i32::MAX);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.observed_generation >= deployment.metadata.generation;
    let rollout = (!current || updated < wanted || status.replicas.unwrap_or(0) > wanted)
        .then(|| format!("rolling out: {updated} of {wanted} pods updated, {ready} ready"));
    let condition = if ready >= wanted && current {
        Observed::ok(
            WORKLOAD_READY,
            "Available",
            format!("{ready} of {wanted} pods ready"),
        )
    } else {
        Observed::failed(
            WORKLOAD_READY,
            "PodsNotReady",
            format!("{ready} of {wanted} pods ready"),
        )
    };
    (condition, rollout, ready)
}
