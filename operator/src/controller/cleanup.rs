//! Deletion of what a resource created outside Kubernetes, behind a finalizer that is
//! present only while `deletionPolicy` is `Delete` (a `Retain` resource goes at once).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Error as FinalizerError, Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, Error};

/// The finalizer that holds a `Delete` resource until its topics or table are gone.
pub const FINALIZER: &str = "homestream.io/cleanup";

/// Runs `apply` for a live resource and `cleanup` for a deleted one whose
/// `deletionPolicy` is `Delete`; removes the finalizer when the policy went back to
/// `Retain`. Every reconcile of every kind goes through here, so it is also where the
/// reconcile is counted and timed.
///
/// # Errors
/// The error of `apply` or `cleanup`, or of the finalizer patch.
pub async fn with_cleanup<K, A, AF, C, CF>(
    ctx: &Context,
    resource: Arc<K>,
    delete_on_removal: bool,
    apply: A,
    cleanup: C,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    A: FnOnce(Arc<K>) -> AF,
    AF: Future<Output = Result<Action, Error>>,
    C: FnOnce(Arc<K>) -> CF,
    CF: Future<Output = Result<Action, Error>>,
{
    let started = std::time::Instant::now();
    let outcome = async {
        let api: Api<K> = Api::namespaced(
            ctx.client.clone(),
            &resource.namespace().unwrap_or_default(),
        );
        let has_finalizer = resource.finalizers().iter().any(|f| f == FINALIZER);
        if !delete_on_removal {
            if has_finalizer {
                remove_finalizer(&api, resource.as_ref()).await?;
            }
            if resource.meta().deletion_timestamp.is_some() {
                return Ok(Action::await_change());
            }
            return apply(resource).await;
        }
        finalizer(&api, FINALIZER, resource, |event| async move {
            match event {
                Event::Apply(resource) => apply(resource).await,
                Event::Cleanup(resource) => cleanup(resource).await,
            }
        })
        .await
        .or_else(|error| match error {
            // Another reconcile of the same deletion removed the finalizer first: done.
            FinalizerError::RemoveFinalizer(kube::Error::Api(status)) if status.code == 404 => {
                Ok(Action::await_change())
            }
            error => Err(Error::Finalizer(Box::new(error))),
        })
    }
    .await;
    ctx.metrics
        .reconciled(&K::kind(&()), started.elapsed().as_secs_f64());
    outcome
}

async fn remove_finalizer<K>(api: &Api<K>, resource: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let remaining: Vec<&String> = resource
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = serde_json::json!({ "metadata": {
        "finalizers": remaining,
        "resourceVersion": resource.resource_version(),
    }});
    api.patch(
        &resource.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}
