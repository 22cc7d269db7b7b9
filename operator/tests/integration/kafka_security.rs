//! The operator against the stack's SASL_SSL listener only (SCRAM-SHA-512 over TLS
//! checked against the stack's CA), with operator-wide Kafka security: its own admin
//! client logs in with the credential files it is given, creates and reconciles the
//! declared topic, and hands the runtime pods the default TLS and SASL Secrets; a
//! refused login or an untrusted broker is reported in status with its reason, and a
//! corrected password file is picked up without a restart.

use crate::support;

use std::time::Duration;

use crate::support::{CONVERGE, Operator, apply, rest_scrape_job, wait_condition};
use anyhow::{Context, Result};
use homestream_crds::ScrapeJob;
use homestream_tests::secure_kafka::{self, CredentialFiles};
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const CREATED_TOPICS: &str = "homestream.io/created-topics";

fn start(env: &StackEnv, ns: &str, args: &[String]) -> Result<Operator> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Operator::start_with(env, ns, &args, "homestream-operator-kafka-security", None)
}

/// Partitions of a topic, read over the stack's plaintext listener.
fn partitions(env: &StackEnv, topic: &str) -> Result<Option<usize>> {
    let metadata = kafka::admin(env)?
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len()))
}

async fn wait_partitions(env: &StackEnv, topic: &str, expected: usize) -> Result<()> {
    wait::until(
        &format!("topic {topic} with {expected} partitions"),
        CONVERGE,
        || async {
            Ok(match partitions(env, topic)? {
                Some(n) if n == expected => Ok(()),
                other => Err(format!("{other:?} partitions")),
            })
        },
    )
    .await
}

/// Proves: with the SASL_SSL listener as the default brokers, the operator's admin
/// client (the stack's CA file, the SCRAM user from files) creates the declared topic
/// and later raises its partitions; the run's pod mounts the default CA Secret where
/// the runtime configuration points and gets the SASL login from the default Secret.
#[tokio::test]
async fn the_operator_manages_topics_over_sasl_ssl_and_hands_the_defaults_to_the_pods() -> Result<()>
{
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let files = CredentialFiles::new(&env, &env.kafka_secure.password)?;
        let _operator = start(
            &env,
            &ns,
            &secure_kafka::operator_args(&env, &files, Some(&env.kafka_secure.ca_file)),
        )?;
        let jobs: Api<ScrapeJob> = Api::namespaced(client.clone(), &ns);
        let topic = random_name("sasl-ssl");
        apply(&jobs, &rest_scrape_job(&topic, 2, None)?).await?;
        wait_condition(&jobs, "rest", "TopicReady", "True", "TopicsReady").await?;
        wait_partitions(&env, &topic, 2).await?;
        let created = jobs.get("rest").await?.annotations().get(CREATED_TOPICS).cloned();
        assert_eq!(created.as_deref(), Some(topic.as_str()), "the operator created it");

        apply(&jobs, &rest_scrape_job(&topic, 3, None)?).await?;
        wait_partitions(&env, &topic, 3).await?;
        wait_condition(&jobs, "rest", "TopicReady", "True", "TopicsReady").await?;

        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let runtime_config: Value = serde_yaml::from_str(
            config_maps
                .get("rest")
                .await?
                .data
                .and_then(|mut data| data.remove("config.yaml"))
                .context("no config.yaml")?
                .as_str(),
        )?;
        assert_eq!(
            runtime_config["kafka"],
            json!({
                "bootstrapServers": [env.kafka_secure.bootstrap],
                "tls": { "ca": "/etc/homestream-tls/kafka/ca.crt" },
                "saslMechanism": "ScramSha512",
            })
        );
        let run = wait::until("the run's Job", CONVERGE, || async {
            let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
            Ok(jobs.get_opt("rest").await?.ok_or_else(|| "not yet".to_owned()))
        })
        .await?;
        let pod = serde_json::to_value(&run.spec.context("no spec")?.template)?;
        let volume = pod["spec"]["volumes"]
            .as_array()
            .context("no volumes")?
            .iter()
            .find(|v| v["name"] == "kafka-tls")
            .context("no kafka-tls volume")?;
        assert_eq!(
            volume["projected"]["sources"],
            json!([{ "secret": { "name": "kafka-cluster-ca", "items": [{ "key": "ca.crt", "path": "ca.crt" }], "optional": false } }])
        );
        let env_vars = &pod["spec"]["containers"][0]["env"];
        for (variable, key) in [
            ("HOMESTREAM_KAFKA_USERNAME", "username"),
            ("HOMESTREAM_KAFKA_PASSWORD", "password"),
        ] {
            let var = env_vars
                .as_array()
                .context("no env")?
                .iter()
                .find(|v| v["name"] == variable)
                .with_context(|| format!("no {variable}"))?;
            assert_eq!(
                var["valueFrom"]["secretKeyRef"],
                json!({ "name": "homestream-kafka", "key": key, "optional": false })
            );
        }
        Ok(())
    })
    .await
}

/// Proves: a wrong password turns TopicReady False with reason
/// `KafkaAuthenticationFailed` and the broker's answer in the message, and no topic is
/// created; once the password file holds the right password (a rotated Secret), the
/// same operator process creates the topic. A broker certificate the operator cannot
/// verify (no CA file: the system's roots) gives `KafkaTlsFailed`, and so does a broker
/// that refuses the operator for want of a client certificate.
#[tokio::test]
async fn a_refused_login_or_an_untrusted_broker_is_reported_with_its_reason() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let jobs: Api<ScrapeJob> = Api::namespaced(client.clone(), &ns);
        let topic = random_name("sasl-refused");
        apply(&jobs, &rest_scrape_job(&topic, 1, None)?).await?;

        let files = CredentialFiles::new(&env, "not-the-password")?;
        let operator = start(
            &env,
            &ns,
            &secure_kafka::operator_args(&env, &files, Some(&env.kafka_secure.ca_file)),
        )?;
        let refused = wait_condition(
            &jobs,
            "rest",
            "TopicReady",
            "False",
            "KafkaAuthenticationFailed",
        )
        .await?;
        assert!(
            refused.message.contains(&env.kafka_secure.bootstrap)
                && refused.message.contains("Authentication failed"),
            "{}",
            refused.message
        );
        wait_condition(&jobs, "rest", "Ready", "False", "KafkaAuthenticationFailed").await?;
        assert_eq!(partitions(&env, &topic)?, None, "no topic without a login");
        // The failure counter says why too.
        let metrics = support::metrics(&operator).await?;
        assert!(
            metrics.contains(
                "homestream_reconcile_failures_total{kind=\"ScrapeJob\",error=\"KafkaAuthenticationFailed\"}"
            ),
            "{metrics}"
        );

        files.set_password(&env.kafka_secure.password)?;
        wait_condition(&jobs, "rest", "TopicReady", "True", "TopicsReady").await?;
        wait_partitions(&env, &topic, 1).await?;
        drop(operator);

        let untrusting = start(&env, &ns, &secure_kafka::operator_args(&env, &files, None))?;
        let untrusted =
            wait_condition(&jobs, "rest", "TopicReady", "False", "KafkaTlsFailed").await?;
        assert!(
            untrusted.message.contains("certificate verify failed"),
            "{}",
            untrusted.message
        );
        drop(untrusting);

        // Mutual TLS without the operator's client certificate: the broker refuses it.
        let _uncertified = start(
            &env,
            &ns,
            &[
                format!("--kafka-bootstrap-servers={}", env.kafka_mutual_tls.bootstrap),
                "--kafka-tls".to_owned(),
                format!("--kafka-admin-ca-file={}", env.kafka_secure.ca_file.display()),
            ],
        )?;
        // The reason stays KafkaTlsFailed; the message turns to the mutual TLS listener.
        wait::until("TopicReady to name the refused certificate", CONVERGE, || async {
            let job = jobs.get("rest").await?;
            Ok(match support::condition(&job, "TopicReady") {
                Some(c)
                    if c.reason == "KafkaTlsFailed"
                        && c.message.contains(&env.kafka_mutual_tls.bootstrap)
                        && c.message.contains("alert bad certificate") =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            })
        })
        .await?;
        Ok(())
    })
    .await
}
