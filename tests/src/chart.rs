//! The Helm chart installed as a user installs it, on the local stack, and what its
//! ServiceAccount may do as the apiserver's authorizer decides.

use anyhow::Result;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

use crate::crds::repo_path;
use crate::{StackEnv, run_cache_tool};

/// `helm install` of `charts/homestream` as `release` in `namespace`, watching
/// `watched`, on the stack's Kafka and Cassandra, waiting until its pods are Ready.
///
/// # Errors
/// When helm fails, with its message.
pub async fn install(env: &StackEnv, release: &str, namespace: &str, watched: &str) -> Result<()> {
    let chart = repo_path("charts/homestream");
    let settings = [
        format!("watchNamespace={watched}"),
        format!("kafka.bootstrapServers={}", env.kafka_bootstrap),
        format!("cassandra.contactPoints={}", env.cassandra_contact_points),
        "resyncSeconds=2".to_owned(),
    ];
    let mut args = vec!["install", release, chart.to_str().unwrap_or_default()];
    args.extend(["--namespace", namespace, "--wait", "--timeout", "180s"]);
    for setting in &settings {
        args.extend(["--set", setting]);
    }
    run_cache_tool(env, "helm", &args).await.map(drop)
}

/// `helm uninstall` of `release` from `namespace`, waiting until its objects are gone.
///
/// # Errors
/// When helm fails, with its message.
pub async fn uninstall(env: &StackEnv, release: &str, namespace: &str) -> Result<()> {
    let args = ["uninstall", release, "--namespace", namespace, "--wait"];
    run_cache_tool(env, "helm", &args).await.map(drop)
}

/// Whether `namespace`'s ServiceAccount `account` may `verb` `(group, resource)` in
/// `target` (`""`: cluster-wide), as the apiserver's authorizer decides.
///
/// # Errors
/// When the apiserver refuses the review.
pub async fn may(
    client: &Client,
    (namespace, account): (&str, &str),
    verb: &str,
    (group, resource): (&str, &str),
    target: &str,
) -> Result<bool> {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {
            "user": format!("system:serviceaccount:{namespace}:{account}"),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}")],
            "resourceAttributes": {
                "namespace": target, "verb": verb, "group": group, "resource": resource
            }
        }
    }))?;
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = reviews.create(&PostParams::default(), &review).await?;
    Ok(review.status.is_some_and(|status| status.allowed))
}
