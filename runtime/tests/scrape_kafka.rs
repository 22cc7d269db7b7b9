//! The `scrape` subcommand end to end: the binary reads a runtime configuration as the
//! operator writes it, pages through the realtor replay with an API key from a Secret
//! variable, and the records arrive in a real Kafka topic keyed by the record key;
//! the run totals land in the termination message file.

#[allow(
    dead_code,
    reason = "shared with the fixture tests and the benchmark, each using a part"
)]
mod scrape;

use std::time::Duration;

use homestream_crds::ScrapeJobSpec;
use homestream_crds::format::name::TopicName;
use homestream_crds::runtime::{ResolvedKafka, ResourceIdentity, RuntimeConfig};
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::Value;

use scrape::{manifest, server};

#[tokio::test]
async fn scrape_subcommand_publishes_keyed_records_to_kafka() {
    let env = StackEnv::load().unwrap();
    let topic = random_name("hs-scrape");
    kafka::create_topic(&env, &topic, 3).await.unwrap();
    let server = server::start().await;
    let mut manifest = manifest("realtor-api", &server.addr.to_string());
    manifest.spec.output.topic.name = TopicName::from(topic.as_str());
    let config = RuntimeConfig::<ScrapeJobSpec> {
        resource: ResourceIdentity {
            kind: "ScrapeJob".into(),
            namespace: "listings".into(),
            name: "realtor-90004".into(),
            generation: 3,
        },
        spec: manifest.spec,
        kafka: ResolvedKafka {
            bootstrap_servers: env.kafka_bootstrap.split(',').map(str::to_owned).collect(),
            tls: None,
            sasl_mechanism: None,
        },
        cassandra: None,
    };
    let dir = std::env::temp_dir().join(random_name("hs-scrape-test"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.yaml");
    let totals_path = dir.join("termination-log");
    std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_homestream-runtime"));
    command
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .arg("scrape")
        .env("HOMESTREAM_RUN_NAME", "realtor-90004-1")
        .env("HOMESTREAM_TERMINATION_LOG", &totals_path)
        .env("HOMESTREAM_SECRET_RAPIDAPI_KEY", scrape::API_KEY);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let totals: Value =
        serde_json::from_str(&std::fs::read_to_string(&totals_path).unwrap()).unwrap();
    assert_eq!(
        totals,
        serde_json::json!({"pagesFetched": 4, "recordsPublished": 10, "errors": 0})
    );

    let consumer = kafka::consumer(&env, &topic, "read_committed").unwrap();
    let records = kafka::collect_n(&consumer, 10, Duration::from_secs(30))
        .await
        .unwrap();
    let mut keys = Vec::new();
    for (key, payload) in records {
        let key = key.unwrap();
        let value: Value = serde_json::from_str(&payload.unwrap()).unwrap();
        assert_eq!(
            value["property_id"],
            key.as_str(),
            "keyed by the record key"
        );
        assert_eq!(value["_meta"]["job"], "listings/realtor-90004");
        assert_eq!(value["_meta"]["run"], "realtor-90004-1");
        keys.push(key);
    }
    keys.sort_unstable();
    assert_eq!(keys.len(), 10);
    assert!(keys.contains(&"2661871835".to_owned()) && keys.contains(&"9211330065".to_owned()));
    let _ = std::fs::remove_dir_all(&dir);
}
