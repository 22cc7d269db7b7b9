//! What holds a StreamTransform's rollout, with Kafka in this process (librdkafka's mock
//! cluster): an invalid program is reported in `ProgramValid` with the diagnostic's line
//! and column and in an Event; a missing input topic is reported in `InputTopicReady`;
//! Kafka refusing the operator is reported in both topic conditions and backs off. In
//! each case neither the ConfigMap nor the Deployment is applied; with every gate open
//! both are, ConfigMap first.

use std::sync::Arc;
use std::time::Duration;

use homestream_crds::StreamTransform;
use homestream_crds::conditions::{INPUT_TOPIC_READY, PROGRAM_VALID, READY, TOPIC_READY};
use kube::runtime::controller::Action;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::{Value, json};

use super::resources::{self, NAMESPACE};
use super::{ApiServer, assert_condition, context, reconciled};
use crate::controller::streamtransform;

/// The transform's Deployment and ConfigMap.
const CHILD: &str = "normalise-transform";
/// The selector of the transform's pods.
const SELECTOR: &str = "app.kubernetes.io/component=transform,app.kubernetes.io/instance=normalise,app.kubernetes.io/name=homestream";
/// The input and output topics of the transform.
const BOTH_TOPICS: &[&str] = &["listings.raw", "listings.normalised"];
/// The operator's resync of a resource with nothing failing (`--resync-seconds`).
const RESYNC: Duration = Duration::from_secs(30);
/// The first backoff after an outage.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);

/// Reconciles `transform` against a mock Kafka cluster holding `topics`, with `scenario`
/// answering the apiserver; the reconcile must then ask to come back after `requeue`.
async fn reconcile_with_kafka(
    topics: &[&str],
    transform: StreamTransform,
    scenario: impl AsyncFnOnce(&mut ApiServer),
    requeue: Duration,
) {
    let kafka: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).unwrap();
    for topic in topics {
        kafka.create_topic(topic, 1, 1).unwrap();
    }
    let (ctx, api) = context(&kafka.bootstrap_servers());
    let outcome = reconciled(
        api,
        streamtransform::reconcile(Arc::new(transform), ctx),
        scenario,
    )
    .await;
    assert_eq!(outcome.unwrap(), Action::requeue(requeue));
}

/// The requests of a held rollout: the workload is only looked at (it does not exist);
/// returns the status written.
async fn held(api: &mut ApiServer, transform: &StreamTransform) -> Value {
    api.observe_deployment(CHILD, None, SELECTOR).await;
    api.status_patch(transform).await
}

#[tokio::test]
async fn an_invalid_program_is_reported_with_line_and_column_and_not_rolled_out() {
    let resource =
        resources::transform(|t| t["spec"]["program"] = json!(".a = 1\n.b = nope(.a)\n"));
    let scenario = async |api: &mut ApiServer| {
        let event = api.event("ProgramInvalid").await;
        assert!(
            event["note"].as_str().unwrap().starts_with("2:6: "),
            "{event}"
        );
        let status = held(api, &resource).await;
        let diagnostic = ["2:6: ", "undefined function"];
        assert_condition(&status, PROGRAM_VALID, "False", "CompileError", &diagnostic);
        assert_condition(&status, READY, "False", "CompileError", &diagnostic);
        assert_condition(
            &status,
            INPUT_TOPIC_READY,
            "True",
            "Exists",
            &["listings.raw"],
        );
        assert_condition(
            &status,
            TOPIC_READY,
            "True",
            "TopicsReady",
            &["listings.normalised"],
        );
        assert_eq!(status.get("programHash"), None, "no program runs");
    };
    reconcile_with_kafka(BOTH_TOPICS, resource.clone(), scenario, RESYNC).await;
}

#[tokio::test]
async fn a_missing_input_topic_is_reported_and_not_rolled_out() {
    let resource = resources::transform(resources::as_written);
    let scenario = async |api: &mut ApiServer| {
        let status = held(api, &resource).await;
        assert_condition(
            &status,
            INPUT_TOPIC_READY,
            "False",
            "InputTopicMissing",
            &["listings.raw"],
        );
        assert_condition(&status, PROGRAM_VALID, "True", "Compiled", &[]);
        assert_condition(&status, READY, "False", "InputTopicMissing", &[]);
    };
    reconcile_with_kafka(&["listings.normalised"], resource.clone(), scenario, RESYNC).await;
}

#[tokio::test]
async fn kafka_refusing_the_operator_is_reported_and_backs_off() {
    // The resource's listener asks for SASL; the operator has no login of its own.
    let resource = resources::transform(|t| {
        t["spec"]["kafka"] = json!({ "sasl": {
            "mechanism": "ScramSha512",
            "credentials": {
                "username": { "name": "kafka-login", "key": "username" },
                "password": { "name": "kafka-login", "key": "password" },
            },
        }});
    });
    let scenario = async |api: &mut ApiServer| {
        let status = held(api, &resource).await;
        let reason = "KafkaCredentialsUnusable";
        for type_ in [INPUT_TOPIC_READY, TOPIC_READY, READY] {
            assert_condition(
                &status,
                type_,
                "False",
                reason,
                &["--kafka-admin-sasl-username-file"],
            );
        }
    };
    reconcile_with_kafka(BOTH_TOPICS, resource.clone(), scenario, FIRST_BACKOFF).await;
}

#[tokio::test]
async fn a_valid_program_with_its_topics_rolls_out_its_config_map_then_its_deployment() {
    let resource = resources::transform(resources::as_written);
    let scenario = async |api: &mut ApiServer| {
        let config_map = api
            .apply(&format!(
                "/api/v1/namespaces/{NAMESPACE}/configmaps/{CHILD}"
            ))
            .await;
        let config = config_map["data"]
            .as_object()
            .and_then(|data| data.values().next())
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(config.contains("to_int!(.price)"), "{config_map:#}");
        let deployment = api
            .apply(&format!(
                "/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{CHILD}"
            ))
            .await;
        assert_eq!(deployment["spec"]["replicas"], 1);
        api.observe_deployment(CHILD, Some(&deployment), SELECTOR)
            .await;
        let status = api.status_patch(&resource).await;
        assert_condition(&status, PROGRAM_VALID, "True", "Compiled", &[]);
        assert_condition(&status, INPUT_TOPIC_READY, "True", "Exists", &[]);
        assert_condition(&status, TOPIC_READY, "True", "TopicsReady", &[]);
        assert!(status["programHash"].is_string(), "{status:#}");
    };
    reconcile_with_kafka(BOTH_TOPICS, resource.clone(), scenario, RESYNC).await;
}
