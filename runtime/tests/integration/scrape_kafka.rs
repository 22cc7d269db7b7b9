//! The `scrape` subcommand end to end: the binary reads a runtime configuration as the
//! operator writes it, pages through the realtor replay with an API key from a Secret
//! variable, and the records arrive in a real Kafka topic keyed by the record key;
//! the run totals land in the termination message file. Brokers that refuse the login
//! or the client certificate, or that the scraper cannot trust, stop the run within
//! seconds with the reason.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use homestream_crds::ScrapeJobSpec;
use homestream_crds::format::name::TopicName;
use homestream_crds::runtime::{
    KAFKA_PASSWORD_ENV, KAFKA_USERNAME_ENV, ResolvedKafka, ResourceIdentity, RuntimeConfig,
};
use homestream_tests::secure_kafka::{self, Refusal};
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::Value;

use crate::scrape::{self, manifest, server};

/// A run's directory: its runtime configuration and its termination message file.
struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// The realtor replay job at `site`, publishing to `topic` through `kafka`.
    fn new(site: &str, topic: &str, kafka: ResolvedKafka) -> Self {
        let mut manifest = manifest("realtor-api", site);
        manifest.spec.output.topic.name = TopicName::from(topic);
        let config = RuntimeConfig::<ScrapeJobSpec> {
            resource: ResourceIdentity {
                kind: "ScrapeJob".into(),
                namespace: "listings".into(),
                name: "realtor-90004".into(),
                generation: 3,
            },
            spec: manifest.spec,
            kafka,
            cassandra: None,
            s3: None,
        };
        let dir = std::env::temp_dir().join(random_name("hs-scrape-test"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.yaml"),
            serde_yaml::to_string(&config).unwrap(),
        )
        .unwrap();
        Self { dir }
    }

    fn totals(&self) -> PathBuf {
        self.dir.join("termination-log")
    }

    /// `homestream-runtime scrape` on this run's configuration.
    fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_homestream-runtime"));
        command
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(self.dir.join("config.yaml"))
            .arg("scrape")
            .env("HOMESTREAM_RUN_NAME", "realtor-90004-1")
            .env("HOMESTREAM_TERMINATION_LOG", self.totals())
            .env("HOMESTREAM_SECRET_RAPIDAPI_KEY", scrape::API_KEY);
        command
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn scrape_subcommand_publishes_keyed_records_to_kafka() {
    if !server::captures_or_skip("scrape_subcommand_publishes_keyed_records_to_kafka") {
        return;
    }
    let env = StackEnv::load().unwrap();
    let topic = random_name("hs-scrape");
    kafka::create_topic(&env, &topic, 3).await.unwrap();
    let server = server::start().await;
    let kafka = ResolvedKafka {
        bootstrap_servers: env.kafka_bootstrap.split(',').map(str::to_owned).collect(),
        tls: None,
        sasl_mechanism: None,
    };
    let run = RunDir::new(&server.addr.to_string(), &topic, kafka);
    let mut command = run.command();
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
        serde_json::from_str(&std::fs::read_to_string(run.totals()).unwrap()).unwrap();
    assert_eq!(
        totals,
        serde_json::json!({
            "pagesFetched": 4,
            "recordsPublished": 10,
            "emptyPages": 0,
            "itemsSkipped": 0,
            "errors": 0
        })
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
}

/// Proves: a wrong SCRAM password, a broker certificate from a CA the scraper does not
/// trust, or no client certificate where the broker requires one, fails the run within
/// seconds with "Kafka refused the connection" and
/// librdkafka's reason, instead of after the 60 s delivery timeout.
#[tokio::test]
async fn a_refused_login_or_an_untrusted_broker_fails_the_run_at_once_with_the_reason() {
    let env = StackEnv::load().unwrap();
    let topic = random_name("hs-scrape-refused");
    kafka::create_topic(&env, &topic, 1).await.unwrap();
    let server = server::start().await;
    for Refusal {
        case,
        kafka,
        password,
        reason,
    } in secure_kafka::refusals(&env)
    {
        let run = RunDir::new(&server.addr.to_string(), &topic, kafka);
        let mut command = run.command();
        command
            .env(KAFKA_USERNAME_ENV, &env.kafka_secure.username)
            .env(KAFKA_PASSWORD_ENV, password);
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "with {case} the run must fail: {stderr}"
        );
        assert!(
            stderr.contains("Kafka refused the connection: ") && stderr.contains(reason),
            "with {case} the run says why ({reason}): {stderr}"
        );
        // The delivery timeout is 60 s; a refusal is seen within a second or two.
        assert!(
            took < Duration::from_secs(20),
            "with {case} it took {took:?}"
        );
    }
}
