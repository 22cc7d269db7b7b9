//! A spec that passes the CRD's CEL rules but not `spec.validate()`: each kind writes
//! one status (its first condition and `Ready` False for `InvalidSpec`, the message
//! naming the field), touches neither Kafka (at [`NOWHERE`]) nor Cassandra nor object
//! storage nor any child, and waits for the spec to change.

use std::future::Future;
use std::sync::Arc;

use homestream_crds::conditions::{
    DEGRADED, PROGRESSING, READY, SCHEMA_READY, TABLE_READY, TOPIC_READY,
};
use kube::Resource;
use kube::runtime::controller::Action;
use serde::Serialize;
use serde_json::json;

use super::resources::{self, GENERATION};
use super::{Error, NOWHERE, assert_condition, condition_types, context, reconciled};
use crate::controller::{Context, cassandrasink, deltasink, scrapejob, streamtransform};

/// Reconciles `resource` and expects the status write of `InvalidSpec` on condition
/// `first` with a message naming each of `mentions`, and nothing else.
async fn assert_reported_invalid<K, R, F>(resource: K, reconcile: R, first: &str, mentions: &[&str])
where
    K: Resource<DynamicType = ()> + Serialize + Send + Sync + 'static,
    R: FnOnce(Arc<K>, Arc<Context>) -> F,
    F: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let (ctx, api) = context(NOWHERE);
    let resource = Arc::new(resource);
    let outcome = reconciled(api, reconcile(resource.clone(), ctx), async |api| {
        let status = api.status_patch(resource.as_ref()).await;
        assert_eq!(
            condition_types(&status),
            [READY, PROGRESSING, DEGRADED, first]
        );
        for type_ in [READY, first] {
            assert_condition(&status, type_, "False", "InvalidSpec", mentions);
        }
        assert_condition(&status, DEGRADED, "True", "InvalidSpec", mentions);
        assert_eq!(status["observedGeneration"], json!(GENERATION));
        assert!(
            status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["observedGeneration"] == json!(GENERATION))
        );
    })
    .await;
    assert_eq!(outcome.unwrap(), Action::await_change());
}

#[tokio::test]
async fn a_scrape_job_using_offset_without_pagination_reports_the_url() {
    let job = resources::scrape_job(|job| {
        job["spec"]["source"]["http"]["url"] =
            json!("https://api.example.com/listings?offset={{offset}}");
    });
    assert_reported_invalid(
        job,
        scrapejob::reconcile,
        TOPIC_READY,
        &["spec.source.http: {{offset}} is used but no pagination mode fills it in"],
    )
    .await;
}

#[tokio::test]
async fn a_stream_transform_with_a_malformed_topic_config_reports_the_key() {
    let transform = resources::transform(|transform| {
        transform["spec"]["output"]["topic"]["config"] = json!({ "Retention.MS": "604800000" });
    });
    assert_reported_invalid(
        transform,
        streamtransform::reconcile,
        TOPIC_READY,
        &["spec.output.topic.config[Retention.MS]: is not a Kafka topic config name"],
    )
    .await;
}

#[tokio::test]
async fn a_cassandra_sink_keyed_by_a_map_reports_the_key() {
    let sink = resources::sink(|sink| {
        sink["spec"]["table"]["partitionKey"] = json!(["features"]);
    });
    assert_reported_invalid(
        sink,
        cassandrasink::reconcile,
        SCHEMA_READY,
        &["spec.table.partitionKey: column features is a map<text, int>"],
    )
    .await;
}

#[tokio::test]
async fn a_delta_sink_with_an_unknown_column_type_reports_the_column() {
    let sink = resources::delta_sink(|sink| {
        sink["spec"]["table"]["columns"][1]["type"] = json!("money");
        sink["spec"]["storage"] = json!({ "endpoint": format!("http://{NOWHERE}") });
    });
    assert_reported_invalid(
        sink,
        deltasink::reconcile,
        TABLE_READY,
        &["spec.table.columns[price].type: unknown type \"money\""],
    )
    .await;
}
