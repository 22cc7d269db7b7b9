//! Topics shared between resources and topics that existed before them, against the
//! local stack: a conflicting declaration, and `deletionPolicy: Delete` deleting only
//! what the operator created.

use crate::support;

use std::time::Duration;

use crate::support::{CONVERGE, Operator, apply, wait_condition};
use anyhow::Result;
use homestream_crds::{ScrapeJob, StreamTransform};
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, ResourceExt};
use serde_json::json;

const CREATED_TOPICS: &str = "homestream.io/created-topics";

fn scrape_job(name: &str, topic: &str, partitions: i32, policy: &str) -> Result<ScrapeJob> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "ScrapeJob",
        "metadata": { "name": name },
        "spec": {
            "source": { "http": { "url": "https://api.example.com/listings" } },
            "extract": {
                "items": { "json": { "path": "$.results[*]" } },
                "fields": [ { "name": "id", "jsonPath": "$.id" } ],
                "key": "id"
            },
            "output": { "topic": { "name": topic, "partitions": partitions } },
            "deletionPolicy": policy
        }
    }))?)
}

/// Partitions of a topic, `None` when it does not exist.
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

async fn wait_topic_gone(env: &StackEnv, topic: &str) -> Result<()> {
    wait::until(
        &format!("topic {topic} to be deleted"),
        CONVERGE,
        || async { Ok(partitions(env, topic)?.map_or(Ok(()), |p| Err(format!("{p} partitions")))) },
    )
    .await
}

/// Proves: when a newer resource declares an existing resource's topic with other
/// settings, the newer one gets `TopicReady=False (TopicConflict)` naming the older one,
/// the topic keeps the older declaration, the newer one's workload is not created, and
/// the older one stays Ready; once the newer one aligns its declaration, both are Ready.
#[tokio::test]
async fn the_older_declaration_of_a_topic_wins_and_the_newer_is_told() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let jobs: Api<ScrapeJob> = Api::namespaced(client.clone(), &ns);
        let topic = random_name("conflict");
        apply(&jobs, &scrape_job("older", &topic, 2, "Retain")?).await?;
        wait_condition(&jobs, "older", "TopicReady", "True", "TopicsReady").await?;

        // Fewer partitions: the newer one may still raise them to align (CEL lets them only grow).
        apply(&jobs, &scrape_job("newer", &topic, 1, "Retain")?).await?;
        let conflict =
            wait_condition(&jobs, "newer", "TopicReady", "False", "TopicConflict").await?;
        assert!(
            conflict.message.contains(&format!("ScrapeJob {ns}/older")),
            "{}",
            conflict.message
        );
        wait_condition(&jobs, "newer", "Ready", "False", "TopicConflict").await?;
        assert_eq!(
            partitions(&env, &topic)?,
            Some(2),
            "the older declaration holds"
        );
        assert!(
            Api::<Job>::namespaced(client.clone(), &ns)
                .get_opt("newer")
                .await?
                .is_none(),
            "no run for a resource whose topic is in conflict"
        );
        wait_condition(&jobs, "older", "TopicReady", "True", "TopicsReady").await?;

        apply(&jobs, &scrape_job("newer", &topic, 2, "Retain")?).await?;
        wait_condition(&jobs, "newer", "TopicReady", "True", "TopicsReady").await?;
        assert_eq!(partitions(&env, &topic)?, Some(2));
        Ok(())
    })
    .await
}

/// Proves: a StreamTransform with `deletionPolicy: Delete` whose output topic existed
/// before it (created by hand) and whose dead-letter topic the operator created records
/// only the latter (annotation); after the operator restarts (a new process, nothing in
/// memory), deleting the resource deletes the dead-letter topic and keeps the output
/// and input topics. And a ScrapeJob with `Delete` whose topic the operator created
/// keeps it while a StreamTransform reads it, and has it deleted with it otherwise.
#[tokio::test]
async fn delete_policy_deletes_only_the_topics_the_operator_created() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let mut operator = Operator::start(&env, &ns)?;
        let (input, existing, dead_letter) = (
            random_name("own-in"),
            random_name("own-existing"),
            random_name("own-dlq"),
        );
        kafka::create_topic(&env, &input, 1).await?;
        kafka::create_topic(&env, &existing, 1).await?;
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        let transform: StreamTransform = serde_json::from_value(json!({
            "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
            "metadata": { "name": "clean" },
            "spec": {
                "input": { "topic": input },
                "output": { "topic": { "name": existing, "partitions": 1 } },
                "deadLetter": { "topic": { "name": dead_letter, "partitions": 1 } },
                "program": ".seen = true\n",
                "deletionPolicy": "Delete"
            }
        }))?;
        apply(&transforms, &transform).await?;
        wait_condition(&transforms, "clean", "TopicReady", "True", "TopicsReady").await?;
        let recorded = wait::until("the record of created topics", CONVERGE, || async {
            let transform = transforms.get("clean").await?;
            Ok(transform
                .annotations()
                .get(CREATED_TOPICS)
                .cloned()
                .ok_or_else(|| "no annotation".to_owned()))
        })
        .await?;
        assert_eq!(recorded, dead_letter, "only the topic the operator created");

        operator.kill().await?;
        let _operator = Operator::start(&env, &ns)?;
        support::delete_and_wait(&transforms, "clean").await?;
        wait_topic_gone(&env, &dead_letter).await?;
        assert_eq!(
            partitions(&env, &existing)?,
            Some(1),
            "a topic that existed before the resource is kept"
        );
        assert_eq!(
            partitions(&env, &input)?,
            Some(1),
            "the input is not the transform's"
        );

        let jobs: Api<ScrapeJob> = Api::namespaced(client.clone(), &ns);
        let (read, unread) = (random_name("own-read"), random_name("own-out"));
        for (name, output) in [("read", &read), ("unread", &unread)] {
            apply(&jobs, &scrape_job(name, output, 1, "Delete")?).await?;
            wait_condition(&jobs, name, "TopicReady", "True", "TopicsReady").await?;
            wait::until("the ScrapeJob's record", CONVERGE, || async {
                let job = jobs.get(name).await?;
                Ok(match job.annotations().get(CREATED_TOPICS) {
                    Some(names) if names == output => Ok(()),
                    other => Err(format!("{other:?}")),
                })
            })
            .await?;
        }
        let reader: StreamTransform = serde_json::from_value(json!({
            "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
            "metadata": { "name": "reader" },
            "spec": {
                "input": { "topic": read },
                "output": { "topic": { "name": random_name("own-reader-out"), "partitions": 1 } },
                "program": ".seen = true\n"
            }
        }))?;
        apply(&transforms, &reader).await?;
        wait_condition(&transforms, "reader", "InputTopicReady", "True", "Exists").await?;
        support::delete_and_wait(&jobs, "read").await?;
        assert_eq!(
            partitions(&env, &read)?,
            Some(1),
            "a topic another resource reads is kept"
        );
        support::delete_and_wait(&jobs, "unread").await?;
        wait_topic_gone(&env, &unread).await?;
        Ok(())
    })
    .await
}
