//! A DeltaSink whose object storage cannot be reached (an endpoint where nothing
//! listens), with Kafka in this process (librdkafka's mock cluster holding the input
//! topic): `TableReady` and `Ready` False for `StorageUnavailable` naming the endpoint,
//! no Event (an outage is not a refusal), neither the ConfigMap nor the Deployment
//! applied, and a requeue with backoff. And what the sink's children would be once the
//! table is ready: the resolved S3 connection in the runtime configuration, the key
//! from its Secret in the pod's environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use homestream_crds::conditions::{INPUT_TOPIC_READY, READY, TABLE_READY};
use homestream_crds::runtime::CONFIG_KEY;
use kube::runtime::controller::Action;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::{Value, json};

use super::resources;
use super::{NOWHERE, assert_condition, context_with, reconciled};
use crate::build::labels::{Component, Owner};
use crate::controller::consumer::{self, ConsumerSpec, Destination};
use crate::controller::deltasink;

/// Where no S3 service listens: the discard port, refused at once.
const NO_STORAGE: &str = "http://127.0.0.1:9";
/// The sink's Deployment and ConfigMap.
const CHILD: &str = "listings-lake-delta-sink";
/// The selector of the sink's pods.
const SELECTOR: &str = "app.kubernetes.io/component=delta-sink,app.kubernetes.io/instance=listings-lake,app.kubernetes.io/name=homestream";
/// The first backoff after an outage.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);

/// The operator's own S3 key as the files its flags name: with a key the S3 client
/// signs requests at once, without one it would first ask the cloud's metadata
/// service for credentials.
fn admin_key_files() -> [PathBuf; 2] {
    let dir = std::env::temp_dir().join(format!("homestream-delta-sink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [dir.join("access-key-id"), dir.join("secret-access-key")];
    std::fs::write(&files[0], "AKIAHOMESTREAMTEST").unwrap();
    std::fs::write(&files[1], "not-a-real-secret").unwrap();
    files
}

#[tokio::test]
async fn unreachable_storage_is_reported_and_nothing_is_rolled_out() {
    let kafka: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).unwrap();
    kafka.create_topic("listings.normalised", 1, 1).unwrap();
    let [id_file, secret_file] = admin_key_files();
    let (ctx, api) = context_with(
        &kafka.bootstrap_servers(),
        &[
            &format!("--s3-endpoint={NO_STORAGE}"),
            "--s3-region=us-east-1",
            "--s3-path-style",
            &format!("--s3-admin-access-key-id-file={}", id_file.display()),
            &format!(
                "--s3-admin-secret-access-key-file={}",
                secret_file.display()
            ),
        ],
    );
    let sink = Arc::new(resources::delta_sink(resources::as_written));
    let outcome = reconciled(api, deltasink::reconcile(sink.clone(), ctx), async |api| {
        // No Event, no ConfigMap, no Deployment: the workload is only looked at.
        api.observe_deployment(CHILD, None, SELECTOR).await;
        let status = api.status_patch(sink.as_ref()).await;
        let mentions = ["s3://homestream/lake/listings", "127.0.0.1:9"];
        for type_ in [TABLE_READY, READY] {
            assert_condition(&status, type_, "False", "StorageUnavailable", &mentions);
        }
        assert_condition(
            &status,
            INPUT_TOPIC_READY,
            "True",
            "Exists",
            &["listings.normalised"],
        );
        assert_eq!(status.get("tableVersion"), None, "no table was read");
    })
    .await;
    assert_eq!(outcome.unwrap(), Action::requeue(FIRST_BACKOFF));
}

#[tokio::test]
async fn the_runtime_gets_the_resolved_connection_and_the_key_from_its_secret() {
    let (ctx, _api) = context_with(
        NOWHERE,
        &[
            "--s3-endpoint=http://minio.lake:9000",
            "--s3-path-style",
            "--s3-access-key-id=lake-writer/access-key-id",
            "--s3-secret-access-key=lake-writer/secret-access-key",
        ],
    );
    let sink =
        resources::delta_sink(|sink| sink["spec"]["storage"] = json!({ "region": "eu-west-2" }));
    let validated = sink.spec.validate().unwrap();
    let owner = Owner::of(&sink, Component::DeltaSink);
    let spec = ConsumerSpec {
        resource: &sink,
        owner: &owner,
        generation: 3,
        spec: &sink.spec,
        input: &validated.input,
        declared: vec![],
        replicas: 1,
        kafka: None,
        destination: Destination::Lake(sink.spec.storage.as_ref()),
        template: None,
        gates: vec![],
    };
    let kafka = ctx.config.resolve_kafka(None);
    let children = consumer::build(&ctx, &spec, &kafka).unwrap();
    let config: Value =
        serde_yaml::from_str(&children.config_map.data.as_ref().unwrap()[CONFIG_KEY]).unwrap();
    assert_eq!(config["resource"]["kind"], "DeltaSink");
    assert_eq!(
        config["s3"],
        json!({
            "endpoint": "http://minio.lake:9000",
            "region": "eu-west-2",
            "pathStyle": true,
            "authenticated": true,
        }),
        "the defaults with the sink's region; no key in the configuration"
    );
    assert_eq!(config.get("cassandra"), None);
    let pod = serde_json::to_value(&children.deployment.spec.unwrap().template).unwrap();
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["args"][0], "sink");
    let key_env: Vec<&Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|env| env["name"].as_str().unwrap().starts_with("HOMESTREAM_S3_"))
        .collect();
    assert_eq!(
        key_env,
        [
            &json!({ "name": "HOMESTREAM_S3_ACCESS_KEY_ID", "valueFrom": { "secretKeyRef":
                { "name": "lake-writer", "key": "access-key-id", "optional": false } } }),
            &json!({ "name": "HOMESTREAM_S3_SECRET_ACCESS_KEY", "valueFrom": { "secretKeyRef":
                { "name": "lake-writer", "key": "secret-access-key", "optional": false } } }),
        ]
    );
    assert_eq!(
        children.deployment.metadata.name.as_deref(),
        Some("listings-lake-delta-sink")
    );
}
