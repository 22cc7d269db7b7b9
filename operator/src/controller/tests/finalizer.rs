//! The cleanup finalizer follows `deletionPolicy`: `Delete` adds it before anything else
//! and, once a resource that created nothing is deleted, removes it without asking
//! Kafka; `Retain` removes a stale one (keeping everyone else's) and lets a deleted
//! resource go without a request.

use std::sync::Arc;

use homestream_crds::conditions::TOPIC_READY;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::resources::{
    self, OTHERS_FINALIZER, RESOURCE_VERSION, being_deleted, deletion_policy, finalizers,
};
use super::{ApiServer, NOWHERE, assert_condition, context, reconciled};
use crate::controller::cleanup::FINALIZER;
use crate::controller::{scrapejob, streamtransform};

const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// Reconciles the StreamTransform made by `edit`, Kafka at [`NOWHERE`] (so any use of
/// it fails the scenario), with `scenario` answering the apiserver; the reconcile must
/// then wait for the next change.
async fn reconcile_transform(
    edit: impl FnOnce(&mut Value),
    scenario: impl AsyncFnOnce(&mut ApiServer),
) {
    let (ctx, api) = context(NOWHERE);
    let transform = Arc::new(resources::transform(edit));
    let outcome = reconciled(api, streamtransform::reconcile(transform, ctx), scenario).await;
    assert_eq!(outcome.unwrap(), Action::await_change());
}

/// The merge patch that leaves only someone else's finalizer.
fn only_others_finalizer() -> Value {
    json!({ "metadata": {
        "finalizers": [OTHERS_FINALIZER],
        "resourceVersion": RESOURCE_VERSION,
    }})
}

#[tokio::test]
async fn delete_adds_the_finalizer_before_anything_else() {
    let edit = |t: &mut Value| deletion_policy(t, "Delete");
    let resource = resources::transform(edit);
    reconcile_transform(edit, async |api| {
        let patch = api.metadata_patch(&resource, JSON_PATCH).await;
        assert_eq!(
            patch,
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn delete_releases_the_finalizer_of_a_deleted_resource_that_created_nothing() {
    let edit = |t: &mut Value| {
        deletion_policy(t, "Delete");
        finalizers(t, true);
        being_deleted(t);
    };
    let resource = resources::transform(edit);
    reconcile_transform(edit, async |api| {
        let patch = api.metadata_patch(&resource, JSON_PATCH).await;
        assert_eq!(
            patch,
            json!([
                { "op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER },
                { "op": "remove", "path": "/metadata/finalizers/0" },
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn retain_lets_a_deleted_resource_go_without_a_request() {
    reconcile_transform(
        |t| {
            finalizers(t, false);
            being_deleted(t);
        },
        async |_| {},
    )
    .await;
}

#[tokio::test]
async fn retain_removes_a_stale_finalizer_from_a_deleted_resource_and_nothing_else() {
    let edit = |t: &mut Value| {
        deletion_policy(t, "Retain");
        finalizers(t, true);
        being_deleted(t);
    };
    let resource = resources::transform(edit);
    reconcile_transform(edit, async |api| {
        let patch = api.metadata_patch(&resource, MERGE_PATCH).await;
        assert_eq!(patch, only_others_finalizer());
    })
    .await;
}

#[tokio::test]
async fn retain_removes_a_stale_finalizer_then_reconciles() {
    // An invalid spec, so that the reconcile after the finalizer is one status write.
    let job = Arc::new(resources::scrape_job(|job| {
        finalizers(job, true);
        job["spec"]["source"]["http"]["url"] = json!("https://api.example.com/?page={{page}}");
    }));
    let (ctx, api) = context(NOWHERE);
    let outcome = reconciled(api, scrapejob::reconcile(job.clone(), ctx), async |api| {
        let patch = api.metadata_patch(job.as_ref(), MERGE_PATCH).await;
        assert_eq!(patch, only_others_finalizer());
        let status = api.status_patch(job.as_ref()).await;
        assert_condition(&status, TOPIC_READY, "False", "InvalidSpec", &["{{page}}"]);
    })
    .await;
    assert_eq!(outcome.unwrap(), Action::await_change());
}
