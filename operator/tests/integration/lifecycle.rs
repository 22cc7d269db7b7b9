//! The operator against the local stack's apiserver, controller-manager, Kafka and
//! Cassandra: each test runs the real operator binary for its own namespace, applies
//! resources as a user would, and checks the topics, tables and workloads that really
//! exist, and the conditions in status.

use crate::support;

use crate::support::{CONVERGE, Operator, apply, rest_scrape_job, wait_condition};
use anyhow::{Context, Result};
use homestream_crds::{CassandraSink, ScrapeJob, StreamTransform};
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde_json::json;

const HASH: &str = "homestream.io/config-hash";

fn transform(
    name: &str,
    input: &str,
    output: &str,
    dead_letter: &str,
    program: &str,
) -> Result<StreamTransform> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
        "metadata": { "name": name },
        "spec": {
            "input": { "topic": input },
            "output": { "topic": { "name": output, "partitions": 3, "config": { "retention.ms": "3600000" } } },
            "deadLetter": { "topic": { "name": dead_letter, "partitions": 1 } },
            "program": program,
            "deletionPolicy": "Delete"
        }
    }))?)
}

async fn deployment_hash(api: &Api<Deployment>, name: &str) -> Result<Option<String>> {
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|d| d.spec?.template.metadata?.annotations?.get(HASH).cloned()))
}

/// Partitions of a topic, `None` when it does not exist.
async fn partitions(env: &StackEnv, topic: &str) -> Result<Option<usize>> {
    let admin = kafka::admin(env)?;
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), std::time::Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len()))
}

#[tokio::test]
async fn stream_transform_topics_rollout_invalid_program_and_delete() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let operator = Operator::start(&env, &ns)?;
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let (input, output, dead_letter) = (
            random_name("st-in"),
            random_name("st-out"),
            random_name("st-dlq"),
        );
        apply(
            &transforms,
            &transform("clean", &input, &output, &dead_letter, ".price = 1\n")?,
        )
        .await?;

        // The input topic does not exist yet: the operator waits and says so.
        let waiting = wait_condition(
            &transforms,
            "clean",
            "InputTopicReady",
            "False",
            "InputTopicMissing",
        )
        .await?;
        assert!(waiting.message.contains(&input), "{}", waiting.message);
        assert!(
            deployment_hash(&deployments, "clean-transform")
                .await?
                .is_none(),
            "no rollout before the input exists"
        );

        kafka::create_topic(&env, &input, 2).await?;
        wait_condition(&transforms, "clean", "TopicReady", "True", "TopicsReady").await?;
        wait_condition(&transforms, "clean", "ProgramValid", "True", "Compiled").await?;
        assert_eq!(partitions(&env, &output).await?, Some(3));
        assert_eq!(partitions(&env, &dead_letter).await?, Some(1));
        let described = kafka::admin(&env)?
            .describe_configs([&ResourceSpecifier::Topic(&output)], &AdminOptions::new())
            .await?;
        let config = described
            .into_iter()
            .next()
            .context("no config")?
            .map_err(anyhow::Error::msg)?;
        assert_eq!(
            config.get("retention.ms").and_then(|e| e.value.as_deref()),
            Some("3600000")
        );

        // The workload: a Deployment carrying the hash of a ConfigMap with the spec.
        wait_condition(&transforms, "clean", "InputTopicReady", "True", "Exists").await?;
        let first = wait::until("a Deployment with a config hash", CONVERGE, || async {
            Ok(deployment_hash(&deployments, "clean-transform")
                .await?
                .ok_or_else(|| "none yet".to_owned()))
        })
        .await?;
        let config_map = Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .get("clean-transform")
            .await?;
        let config_yaml = config_map
            .data
            .unwrap_or_default()
            .remove("config.yaml")
            .unwrap_or_default();
        assert!(config_yaml.contains(".price = 1"), "{config_yaml}");
        let deployment = deployments.get("clean-transform").await?;
        let pod = deployment
            .spec
            .context("spec")?
            .template
            .spec
            .context("pod spec")?;
        let security = pod.containers[0]
            .security_context
            .clone()
            .context("security context")?;
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(pod.automount_service_account_token, Some(false));

        // The operator's own metrics count the reconciles.
        let metrics = support::metrics(&operator).await?;
        assert!(
            metrics.contains("homestream_reconciles_total{kind=\"StreamTransform\"}"),
            "{metrics}"
        );

        // A program change rolls the pods (a new hash on the template).
        apply(
            &transforms,
            &transform("clean", &input, &output, &dead_letter, ".price = 2\n")?,
        )
        .await?;
        let second = wait::until("the config hash to change", CONVERGE, || async {
            let hash = deployment_hash(&deployments, "clean-transform").await?;
            Ok(hash
                .filter(|h| *h != first)
                .ok_or_else(|| format!("still {first}")))
        })
        .await?;

        // An invalid program is reported with its position and never rolled out.
        apply(
            &transforms,
            &transform(
                "clean",
                &input,
                &output,
                &dead_letter,
                ".price = 3\n.x = nope(.price)\n",
            )?,
        )
        .await?;
        let invalid = wait_condition(
            &transforms,
            "clean",
            "ProgramValid",
            "False",
            "CompileError",
        )
        .await?;
        assert!(
            invalid.message.starts_with("2:"),
            "diagnostic without line: {}",
            invalid.message
        );
        assert!(
            invalid.message.contains("undefined function"),
            "{}",
            invalid.message
        );
        wait_condition(&transforms, "clean", "Ready", "False", "CompileError").await?;
        assert_eq!(
            deployment_hash(&deployments, "clean-transform").await?,
            Some(second.clone()),
            "the running version stays"
        );

        // A SQL program rolls out in its place; an invalid one is reported with the
        // planner's position and never rolled out either.
        let sql = |query: &str| -> Result<StreamTransform> {
            let mut sql = transform("clean", &input, &output, &dead_letter, "")?;
            sql.spec.program = None;
            sql.spec.sql = Some(serde_json::from_value(json!({
                "query": query,
                "columns": [{"name": "city", "type": "string"}]
            }))?);
            Ok(sql)
        };
        apply(
            &transforms,
            &sql("SELECT upper(city) AS city FROM records")?,
        )
        .await?;
        wait_condition(&transforms, "clean", "ProgramValid", "True", "Compiled").await?;
        let third = wait::until("the SQL program to roll out", CONVERGE, || async {
            let hash = deployment_hash(&deployments, "clean-transform").await?;
            Ok(hash
                .filter(|h| *h != second)
                .ok_or_else(|| format!("still {second}")))
        })
        .await?;
        apply(
            &transforms,
            &sql("SELECT upper(city) AS city\nFROM records\nWHERE nope > 1")?,
        )
        .await?;
        let invalid = wait_condition(
            &transforms,
            "clean",
            "ProgramValid",
            "False",
            "CompileError",
        )
        .await?;
        assert!(
            invalid.message.starts_with("3:7: ") && invalid.message.contains("nope"),
            "diagnostic without its position: {}",
            invalid.message
        );
        assert_eq!(
            deployment_hash(&deployments, "clean-transform").await?,
            Some(third),
            "the SQL version stays"
        );

        // deletionPolicy Delete: the finalizer deletes the topics it declared.
        support::delete_and_wait(&transforms, "clean").await?;
        wait::until("the output topic to be deleted", CONVERGE, || async {
            Ok(partitions(&env, &output)
                .await?
                .map_or(Ok(()), |p| Err(format!("{p} partitions"))))
        })
        .await?;
        assert!(
            partitions(&env, &input).await?.is_some(),
            "the input topic is not the transform's to delete"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_partition_decrease_is_refused_in_status() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let (input, output, dead_letter) = (
            random_name("pd-in"),
            random_name("pd-out"),
            random_name("pd-dlq"),
        );
        kafka::create_topic(&env, &input, 1).await?;
        kafka::create_topic(&env, &output, 6).await?;
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        apply(
            &transforms,
            &transform("shrink", &input, &output, &dead_letter, ".a = 1\n")?,
        )
        .await?;
        let refused = wait_condition(
            &transforms,
            "shrink",
            "TopicReady",
            "False",
            "PartitionDecrease",
        )
        .await?;
        assert!(
            refused.message.contains("6 partitions"),
            "{}",
            refused.message
        );
        wait_condition(
            &transforms,
            "shrink",
            "Degraded",
            "True",
            "PartitionDecrease",
        )
        .await?;
        assert_eq!(
            partitions(&env, &output).await?,
            Some(6),
            "nothing was changed"
        );
        // Deleted while its operator runs, so that its finalizer does not hold the
        // namespace in Terminating after the test; the output topic existed before the
        // transform, so deletionPolicy Delete keeps it.
        support::delete_and_wait(&transforms, "shrink").await?;
        assert_eq!(partitions(&env, &output).await?, Some(6));
        Ok(())
    })
    .await
}

fn sink(
    name: &str,
    input: &str,
    keyspace: &str,
    policy: &str,
    extra_column: bool,
) -> Result<CassandraSink> {
    let mut columns = vec![
        json!({ "name": "listing_id", "type": "text" }),
        json!({ "name": "price", "type": "bigint" }),
        json!({ "name": "beds", "type": "int" }),
    ];
    if extra_column {
        columns.push(json!({ "name": "postcode", "type": "text" }));
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "CassandraSink",
        "metadata": { "name": name },
        "spec": {
            "input": { "topic": input },
            "keyspace": { "name": keyspace, "replication": { "simpleStrategy": { "replicationFactor": 1 } } },
            "table": { "name": "listings", "columns": columns, "partitionKey": ["listing_id"] },
            "schemaPolicy": policy
        }
    }))?)
}

async fn table_columns(session: &Session, keyspace: &str) -> Result<Vec<String>> {
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'listings'",
            (keyspace,),
        )
        .await?
        .into_rows_result()?;
    let mut names: Vec<String> = rows
        .rows::<(String,)>()?
        .map(|r| r.map(|(n,)| n))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn cassandra_sink_creates_adds_and_refuses_schema_changes() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let session = SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await?;
    let keyspace = random_name("cs").replace('-', "_");
    let (session_ref, keyspace_ref) = (&session, keyspace.as_str());
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let input = random_name("cs-in");
        kafka::create_topic(&env, &input, 1).await?;
        let sinks: Api<CassandraSink> = Api::namespaced(client.clone(), &ns);
        apply(
            &sinks,
            &sink("rows", &input, keyspace_ref, "Create", false)?,
        )
        .await?;
        wait_condition(&sinks, "rows", "SchemaReady", "True", "SchemaReady").await?;
        assert_eq!(
            table_columns(session_ref, keyspace_ref).await?,
            ["beds", "listing_id", "price"]
        );

        // Create never alters: a new column is reported, not added.
        apply(&sinks, &sink("rows", &input, keyspace_ref, "Create", true)?).await?;
        wait_condition(&sinks, "rows", "SchemaReady", "False", "ColumnsMissing").await?;
        // AddColumns adds it.
        apply(
            &sinks,
            &sink("rows", &input, keyspace_ref, "AddColumns", true)?,
        )
        .await?;
        wait_condition(&sinks, "rows", "SchemaReady", "True", "SchemaReady").await?;
        assert_eq!(
            table_columns(session_ref, keyspace_ref).await?,
            ["beds", "listing_id", "postcode", "price"]
        );

        // Removing a column is refused; the data's column stays.
        apply(
            &sinks,
            &sink("rows", &input, keyspace_ref, "AddColumns", false)?,
        )
        .await?;
        let refused =
            wait_condition(&sinks, "rows", "SchemaReady", "False", "ColumnRemoved").await?;
        assert!(refused.message.contains("postcode"), "{}", refused.message);
        assert!(
            table_columns(session_ref, keyspace_ref)
                .await?
                .contains(&"postcode".to_owned())
        );

        // Retain (the default): deleting the sink keeps the table.
        support::delete_and_wait(&sinks, "rows").await?;
        assert_eq!(
            table_columns(session_ref, keyspace_ref).await?.len(),
            4,
            "Retain keeps the table"
        );
        Ok(())
    })
    .await?;
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await?;
    Ok(())
}

#[tokio::test]
async fn cassandra_sink_delete_policy_drops_only_a_table_it_created() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let session = SessionBuilder::new()
        .known_nodes(env.cassandra_contact_points.split(','))
        .build()
        .await?;
    let keyspace = random_name("csd").replace('-', "_");
    let (session_ref, keyspace_ref) = (&session, keyspace.as_str());
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let input = random_name("csd-in");
        kafka::create_topic(&env, &input, 1).await?;
        let sinks: Api<CassandraSink> = Api::namespaced(client.clone(), &ns);
        let mut declared = sink("gone", &input, keyspace_ref, "Create", false)?;
        declared.spec.deletion_policy = Some(homestream_crds::deletion::DeletionPolicy::Delete);
        apply(&sinks, &declared).await?;
        wait_condition(&sinks, "gone", "SchemaReady", "True", "SchemaReady").await?;
        support::delete_and_wait(&sinks, "gone").await?;
        wait::until("the table to be dropped", CONVERGE, || async {
            let columns = table_columns(session_ref, keyspace_ref).await?;
            Ok(if columns.is_empty() {
                Ok(())
            } else {
                Err(format!("columns {columns:?}"))
            })
        })
        .await?;

        // A table that existed before the sink is not the operator's to drop.
        session_ref
            .query_unpaged(
                format!(
                    "CREATE TABLE {keyspace_ref}.listings \
                     (listing_id text PRIMARY KEY, price bigint, beds int)"
                ),
                &[],
            )
            .await?;
        apply(&sinks, &declared).await?;
        let ready = wait_condition(&sinks, "gone", "SchemaReady", "True", "SchemaReady").await?;
        assert!(
            ready.message.ends_with("matches the spec"),
            "the operator found the table, it did not create it: {}",
            ready.message
        );
        let recorded = sinks
            .get("gone")
            .await?
            .annotations()
            .get("homestream.io/created-tables")
            .cloned();
        assert_eq!(recorded, None, "no table is recorded as created");
        support::delete_and_wait(&sinks, "gone").await?;
        assert_eq!(
            table_columns(session_ref, keyspace_ref).await?,
            ["beds", "listing_id", "price"],
            "a table the operator did not create is kept"
        );
        Ok(())
    })
    .await?;
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), &[])
        .await?;
    Ok(())
}

#[tokio::test]
async fn scrape_job_runs_once_as_a_job_and_on_a_schedule_as_a_cronjob() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let operator = Operator::start(&env, &ns)?;
        let output = random_name("sj-out");
        let job = |schedule: Option<&str>| rest_scrape_job(&output, 2, schedule);
        let jobs: Api<ScrapeJob> = Api::namespaced(client.clone(), &ns);
        // What CEL cannot catch is refused in status, naming the field and the problem.
        let mut invalid = job(None)?;
        if let Some(http) = invalid.spec.source.http.as_mut() {
            http.url = "https://api.example.com/listings?offset={{offset}}".into();
        }
        apply(&jobs, &invalid).await?;
        let refused = wait_condition(&jobs, "rest", "Ready", "False", "InvalidSpec").await?;
        assert!(
            refused
                .message
                .contains("{{offset}} is used but no pagination mode fills it in"),
            "{}",
            refused.message
        );
        apply(&jobs, &job(None)?).await?;
        wait_condition(&jobs, "rest", "TopicReady", "True", "TopicsReady").await?;
        assert_eq!(partitions(&env, &output).await?, Some(2));
        let run = wait::until("the Job", CONVERGE, || async {
            Ok(Api::<Job>::namespaced(client.clone(), &ns)
                .get_opt("rest")
                .await?
                .ok_or_else(|| "none".to_owned()))
        })
        .await?;
        let args = run
            .spec
            .context("spec")?
            .template
            .spec
            .context("pod")?
            .containers[0]
            .args
            .clone()
            .unwrap_or_default();
        assert_eq!(args.first().map(String::as_str), Some("scrape"));

        // A Job's pod template is immutable: a changed configuration replaces the run,
        // waiting for the old Job to be gone rather than failing to update it.
        let mut changed = job(None)?;
        if let Some(http) = changed.spec.source.http.as_mut() {
            http.url = "https://api.example.com/listings?edition=2".into();
        }
        apply(&jobs, &changed).await?;
        let first_run = run.metadata.uid.clone();
        wait::until("the replaced Job", CONVERGE, || async {
            let current = Api::<Job>::namespaced(client.clone(), &ns)
                .get_opt("rest")
                .await?;
            Ok(match current {
                Some(job) if job.metadata.uid != first_run => Ok(()),
                other => Err(format!("{:?}", other.and_then(|job| job.metadata.uid))),
            })
        })
        .await?;
        let metrics = support::metrics(&operator).await?;
        assert!(
            !metrics.contains("kind=\"ScrapeJob\",error=\"KubeApi\""),
            "a reconcile failed on the Kubernetes API: {metrics}"
        );

        apply(&jobs, &job(Some("0 */6 * * *"))?).await?;
        let cron = wait::until("the CronJob", CONVERGE, || async {
            Ok(Api::<CronJob>::namespaced(client.clone(), &ns)
                .get_opt("rest")
                .await?
                .ok_or_else(|| "none".to_owned()))
        })
        .await?;
        assert_eq!(cron.spec.schedule, "0 */6 * * *");
        assert_eq!(cron.spec.time_zone.as_deref(), Some("Europe/London"));
        // Server-side apply of the user's change: the operator never wrote the spec (only
        // its record of the topic it created, an annotation).
        let operator_fields: Vec<serde_json::Value> = jobs
            .get("rest")
            .await?
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.subresource.is_none())
            .filter(|f| f.manager.as_deref() == Some("homestream-operator"))
            .filter_map(|f| f.fields_v1.map(|fields| fields.0))
            .collect();
        assert_eq!(
            operator_fields,
            [json!({ "f:metadata": { "f:annotations": {
                "f:homestream.io/created-topics": {}
            } } })],
            "the operator wrote more than its annotation"
        );
        Ok(())
    })
    .await
}
