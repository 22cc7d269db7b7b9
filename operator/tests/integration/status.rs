//! What the operator reports in status beyond conditions, against the local stack: a
//! ScrapeJob's next scheduled run and its last run (read back from the run's pod), and
//! the consumer lag of StreamTransforms and CassandraSinks (read from Kafka).

use crate::support;

use std::time::Duration;

use crate::support::{CONVERGE, Operator, apply, rest_scrape_job, wait_condition};
use anyhow::{Context, Result};
use chrono::{TimeZone as _, Timelike};
use homestream_crds::{CassandraSink, ScrapeJob, StreamTransform};
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use scylla::client::session_builder::SessionBuilder;
use serde_json::json;

/// Proves: for a schedule, `nextScheduleTime` is a time the schedule selects in its time
/// zone, after the resource was applied and at most one period later, and it goes away
/// for a run-once ScrapeJob; for a run, the pod the real Job controller created is
/// marked finished through the pods/status subresource with the scraper's termination
/// message (no kubelet runs it here), and the operator turns the finished Job and that
/// message into `lastRun` (name, start, finish, succeeded, the five totals),
/// `lastSuccessfulTime` and `WorkloadReady=True (RunSucceeded)`. It does not prove that a
/// real scraper writes that message (the runtime's tests do).
#[tokio::test]
async fn scrape_job_reports_its_next_scheduled_run_and_its_last_run() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let jobs: Api<ScrapeJob> = Api::namespaced(client.clone(), &ns);
        let output = random_name("sj-status");
        let applied_at = chrono::Utc::now();
        apply(&jobs, &rest_scrape_job(&output, 1, Some("15 */6 * * *"))?).await?;
        let next = wait::until("status.nextScheduleTime", CONVERGE, || async {
            let job = jobs.get("rest").await?;
            Ok(job
                .status
                .and_then(|s| s.next_schedule_time)
                .ok_or_else(|| "not yet".to_owned()))
        })
        .await?;
        let next = chrono::Utc
            .timestamp_opt(next.0.as_second(), 0)
            .single()
            .context("time out of range")?;
        let london = next.with_timezone(&chrono_tz::Europe::London);
        assert_eq!(
            (london.minute(), london.second(), london.hour() % 6),
            (15, 0, 0),
            "{london} is not selected by 15 */6 * * *"
        );
        assert!(next > applied_at, "{next} is not after {applied_at}");
        assert!(
            next <= chrono::Utc::now() + chrono::Duration::hours(6),
            "{next} is more than one period ahead"
        );

        // Run once: no schedule, so no next run; a Job runs. Its pod selects no node:
        // the test plays the kubelet and writes the pod's status itself, which the
        // stack's real kubelet would overwrite.
        let mut run_once = rest_scrape_job(&output, 1, None)?;
        run_once.spec.template = Some(no_node()?);
        apply(&jobs, &run_once).await?;
        wait::until("nextScheduleTime to go", CONVERGE, || async {
            let status = jobs.get("rest").await?.status.unwrap_or_default();
            Ok(status
                .next_schedule_time
                .map_or(Ok(()), |t| Err(format!("still {}", t.0))))
        })
        .await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let pod = wait::until(
            "the Job controller to create the run's pod",
            CONVERGE,
            || async {
                let list = pods
                    .list(&ListParams::default().labels("batch.kubernetes.io/job-name=rest"))
                    .await?;
                Ok(list
                    .items
                    .into_iter()
                    .next()
                    .ok_or_else(|| "no pod yet".to_owned()))
            },
        )
        .await?;
        let container = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.containers.first())
            .context("pod without a container")?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let totals = json!({
            "pagesFetched": 7,
            "recordsPublished": 42,
            "emptyPages": 2,
            "itemsSkipped": 3,
            "errors": 1
        });
        pods.patch_status(
            &kube::ResourceExt::name_any(&pod),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "phase": "Succeeded",
                "startTime": now,
                "containerStatuses": [{
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": false,
                    "restartCount": 0,
                    "state": { "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "message": totals.to_string(),
                        "startedAt": now,
                        "finishedAt": now
                    } }
                }]
            } })),
        )
        .await?;
        wait_condition(&jobs, "rest", "WorkloadReady", "True", "RunSucceeded").await?;
        let status = jobs.get("rest").await?.status.context("no status")?;
        let run = status.last_run.context("no lastRun")?;
        assert_eq!(run.name, "rest");
        assert_eq!(run.succeeded, Some(true));
        assert_eq!(
            (
                run.pages_fetched,
                run.records_published,
                run.empty_pages,
                run.items_skipped,
                run.errors
            ),
            (Some(7), Some(42), Some(2), Some(3), Some(1))
        );
        assert!(
            run.start_time.is_some() && run.finish_time.is_some(),
            "{run:?}"
        );
        assert_eq!(status.last_successful_time, run.finish_time);
        Ok(())
    })
    .await
}

fn transform(name: &str, input: &str) -> Result<StreamTransform> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
        "metadata": { "name": name },
        "spec": {
            "input": { "topic": input },
            "output": { "topic": { "name": random_name("lag-out"), "partitions": 1 } },
            "program": ".seen = true\n"
        }
    }))?)
}

fn sink(name: &str, input: &str, keyspace: &str) -> Result<CassandraSink> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "CassandraSink",
        "metadata": { "name": name },
        "spec": {
            "input": { "topic": input },
            "keyspace": { "name": keyspace, "replication": { "simpleStrategy": { "replicationFactor": 1 } } },
            "table": {
                "name": "listings",
                "columns": [ { "name": "listing_id", "type": "text" } ],
                "partitionKey": ["listing_id"]
            }
        }
    }))?)
}

/// Waits until `read` reports a lag of `expected`.
async fn wait_lag<F, Fut>(what: &str, expected: i64, read: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<i64>>>,
{
    wait::until(&format!("{what} lag {expected}"), CONVERGE, || async {
        Ok(match read().await? {
            Some(lag) if lag == expected => Ok(()),
            other => Err(format!("lag {other:?}")),
        })
    })
    .await
}

/// Pod overrides that match no node: the pods stay Pending, out of the kubelet's hands.
fn no_node() -> Result<homestream_crds::workload::PodTemplate> {
    Ok(serde_json::from_value(json!({
        "nodeSelector": { "homestream.io/test": "no-such-node" }
    }))?)
}

/// Commits `offset` of partition 0 of `topic` for `group`, as a consumer would.
fn commit(env: &StackEnv, group: &str, topic: &str, offset: i64) -> Result<()> {
    let consumer: BaseConsumer = kafka::client_config(env)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(topic, 0, Offset::Offset(offset))?;
    consumer.commit(&offsets, CommitMode::Sync)?;
    Ok(())
}

/// Proves: with N records in the input topic and no pod consuming (the pods select no
/// node), `status.consumerLag` of a StreamTransform and of a CassandraSink
/// becomes N, counted for each one's own consumer group; when offsets are committed for
/// the transform's group (as its pods would), its lag goes down to what is left, while
/// the sink's, another group, stays N.
#[tokio::test]
async fn consumer_lag_in_status_follows_the_committed_offsets() -> Result<()> {
    const RECORDS: i64 = 10;
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let keyspace = random_name("lag").replace('-', "_");
    let keyspace_ref = keyspace.as_str();
    let contact_points = env.cassandra_contact_points.clone();
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let input = random_name("lag-in");
        kafka::create_topic(&env, &input, 1).await?;
        let producer: FutureProducer = kafka::client_config(&env).create()?;
        for i in 0..RECORDS {
            let key = format!("listing-{i}");
            producer
                .send(
                    FutureRecord::to(&input)
                        .key(&key)
                        .payload("{}")
                        .partition(0),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(error, _)| error)?;
        }
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        let sinks: Api<CassandraSink> = Api::namespaced(client.clone(), &ns);
        // No pod may consume: the pods select no node, so the stack's kubelet leaves
        // them Pending and only the test commits offsets.
        let mut clean = transform("clean", &input)?;
        clean.spec.template = Some(no_node()?);
        let mut rows = sink("rows", &input, keyspace_ref)?;
        rows.spec.template = Some(no_node()?);
        apply(&transforms, &clean).await?;
        apply(&sinks, &rows).await?;
        let transform_lag = || async {
            Ok(transforms
                .get("clean")
                .await?
                .status
                .and_then(|s| s.consumer_lag))
        };
        let sink_lag =
            || async { Ok(sinks.get("rows").await?.status.and_then(|s| s.consumer_lag)) };
        wait_lag("transform", RECORDS, transform_lag).await?;
        wait_lag("sink", RECORDS, sink_lag).await?;

        let group = format!("homestream.{ns}.clean");
        commit(&env, &group, &input, 4)?;
        wait_lag("transform", RECORDS - 4, transform_lag).await?;
        commit(&env, &group, &input, RECORDS)?;
        wait_lag("transform", 0, transform_lag).await?;
        assert_eq!(
            sink_lag().await?,
            Some(RECORDS),
            "the sink's group committed nothing"
        );
        Ok(())
    })
    .await?;
    SessionBuilder::new()
        .known_nodes(contact_points.split(','))
        .build()
        .await?
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), &[])
        .await?;
    Ok(())
}
