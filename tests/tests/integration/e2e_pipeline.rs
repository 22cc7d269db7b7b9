//! End to end, as on a cluster: the operator binary, the stack's node (kubelet,
//! containerd) running the pods the operator creates from the project's images, the
//! demo site, and the pipeline of `manifests/examples/` on the real apiserver, Kafka
//! and Cassandra of the local stack. Each test has its own namespace, operator, topics
//! and keyspace; the node is shared. The harness is `homestream_tests::e2e`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use homestream_crds::{CassandraSink, ScrapeJob, StreamTransform};
use homestream_tests::demo::pipeline::{is_resource, named};
use homestream_tests::demo::{homes, observe};
use homestream_tests::e2e::expected::{cleaned, expected_rows};
use homestream_tests::e2e::load::{RawListings, listing_ids};
use homestream_tests::e2e::{
    CONVERGE, Listener, World, ready_stack, transform, with_world, with_world_on,
};
use homestream_tests::{StackEnv, argocd, chart, kafka, kubernetes, manifests, wait};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

/// The pipeline's cleaning StreamTransform.
const TRANSFORM: &str = "normalise-listings";

#[tokio::test]
async fn the_demo_pipeline_lands_every_listing_and_deletion_honours_each_policy() -> Result<()> {
    with_world(|world| async move {
        let mut objects = world.demo_pipeline().await?;
        // The price history is dropped with its sink; the listings table is retained.
        named(&mut objects, "listing-prices").data["spec"]["deletionPolicy"] = json!("Delete");
        let resources: Vec<&DynamicObject> = objects.iter().filter(|o| is_resource(o)).collect();
        for resource in &resources {
            let health = argocd::health(&serde_json::to_value(resource)?)?;
            assert_eq!(health.status, "Progressing", "{}", resource.name_any());
        }
        world.apply(&objects).await?;

        let expected = expected_rows();
        let rows = world.wait_for_rows(expected.len()).await?;
        // Argo CD, through the committed health checks, sees every resource Healthy.
        for resource in &resources {
            let api = manifests::api_for(&world.client, &world.namespace, resource)?;
            let live = serde_json::to_value(api.get(&resource.name_any()).await?)?;
            let health = argocd::health(&live)?;
            assert_eq!(
                health.status,
                "Healthy",
                "{}: {health:?}",
                resource.name_any()
            );
        }
        assert_eq!(cleaned(&rows), expected);
        // The DeltaSink's table, read by Trino (Athena's engine), holds the same
        // listings with the same values as Cassandra.
        let mut lake_rows = world.wait_for_lake_rows(expected.len()).await?;
        let mut cassandra_rows = rows.clone();
        for rows in [&mut lake_rows, &mut cassandra_rows] {
            rows.sort_by(|a, b| (&a.source, &a.listing_id).cmp(&(&b.source, &b.listing_id)));
        }
        assert_eq!(lake_rows, cassandra_rows);
        let prices =
            observe::count_rows(&world.session, &world.isolation.keyspace, "listing_prices")
                .await?;
        assert_eq!(prices, expected.len() as i64);

        // Every record once in each topic, none dead-lettered.
        let normalised =
            observe::committed_records(&world.env, &world.topic("listings.normalised")).await?;
        let keys: BTreeSet<_> = normalised.iter().map(|(key, _)| key.clone()).collect();
        assert_eq!(
            (normalised.len(), keys.len()),
            (expected.len(), expected.len())
        );
        for topic in [
            "listings.normalised.dead-letter",
            "listings.sink.dead-letter",
        ] {
            let dead = observe::committed_records(&world.env, &world.topic(topic)).await?;
            assert!(dead.is_empty(), "{topic}: {dead:?}");
        }

        // The runs' totals reach the ScrapeJobs' status through the pods' termination
        // messages (scraper -> local node -> pod status -> operator).
        let jobs: Api<ScrapeJob> = world.api();
        for (job, pages, records) in [
            ("london-rentals", homes::london_pages(), homes::LONDON_HOMES),
            ("la-rentals", homes::LA_HOMES.div_ceil(50), homes::LA_HOMES),
        ] {
            let run = jobs
                .get(job)
                .await?
                .status
                .and_then(|s| s.last_run)
                .context("no lastRun")?;
            assert_eq!(run.succeeded, Some(true), "{job}");
            assert_eq!(run.pages_fetched, Some(pages as i64), "{job}");
            assert_eq!(run.records_published, Some(records as i64), "{job}");
        }

        // Deleting the resources: Retain keeps the listings table and its rows, Delete
        // drops the price history; the runtime pods go with their resources.
        world.delete(&objects).await?;
        world.wait_for_pods_gone().await?;
        world.wait_for_table_dropped("listing_prices").await?;
        assert_eq!(world.rows().await.len(), expected.len());
        Ok(())
    })
    .await
}

/// Proves: with the SASL_SSL listener as the operator's default brokers, every runtime
/// pod (both scrapers, the transform, both sinks) is configured for it alone, reads the
/// CA from the projected Secret volume and the SCRAM login from the Secret, and the demo
/// pipeline lands every listing over it, once.
#[tokio::test]
async fn the_demo_pipeline_runs_over_tls_with_scram_from_secrets() -> Result<()> {
    let env = StackEnv::load()?;
    let kafka = json!({
        "bootstrapServers": [env.kafka_secure.bootstrap],
        "tls": { "ca": "/etc/homestream-tls/kafka/ca.crt" },
        "saslMechanism": "ScramSha512",
    });
    the_demo_pipeline_runs_over(Listener::SaslSsl, kafka).await
}

/// Proves: with the SSL listener that requires client certificates as the operator's
/// default brokers, the operator manages the topics with its own certificate, every
/// runtime pod reads the CA, its certificate and its key from the projected Secret
/// volume, and the demo pipeline lands every listing over it, once.
#[tokio::test]
async fn the_demo_pipeline_runs_over_mutual_tls_from_secrets() -> Result<()> {
    let env = StackEnv::load()?;
    let kafka = json!({
        "bootstrapServers": [env.kafka_mutual_tls.bootstrap],
        "tls": {
            "ca": "/etc/homestream-tls/kafka/ca.crt",
            "certificate": "/etc/homestream-tls/kafka/tls.crt",
            "key": "/etc/homestream-tls/kafka/tls.key",
        },
    });
    the_demo_pipeline_runs_over(Listener::MutualTls, kafka).await
}

/// The demo pipeline with `listener` as the operator's default brokers: every listing
/// lands once, and every runtime configuration holds `kafka` as its connection.
async fn the_demo_pipeline_runs_over(listener: Listener, kafka: Value) -> Result<()> {
    with_world_on(listener, |world| async move {
        let objects = world.demo_pipeline().await?;
        world.apply(&objects).await?;

        let expected = expected_rows();
        let rows = world.wait_for_rows(expected.len()).await?;
        let keys: BTreeSet<_> = rows
            .iter()
            .map(|r| (r.source.clone(), r.listing_id.clone()))
            .collect();
        assert_eq!(keys, expected.into_keys().collect());

        let config_maps: Api<ConfigMap> = world.api();
        let mut configured = BTreeSet::new();
        for config_map in config_maps.list(&ListParams::default()).await? {
            let Some(config) = config_map.data.as_ref().and_then(|d| d.get("config.yaml")) else {
                continue;
            };
            let config: Value = serde_yaml::from_str(config)?;
            assert_eq!(
                config["kafka"],
                kafka,
                "{listener:?}: {}",
                config_map.name_any()
            );
            configured.insert(config_map.name_any());
        }
        let resources = objects.iter().filter(|o| is_resource(o)).count();
        assert_eq!(configured.len(), resources, "{configured:?}");
        let normalised =
            observe::committed_records(&world.env, &world.topic("listings.normalised")).await?;
        assert_eq!(normalised.len(), rows.len());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn deleting_transform_and_sink_pods_mid_stream_loses_and_duplicates_nothing() -> Result<()> {
    with_world(|world| async move {
        world.start_transform_and_sink().await?;

        let raw = RawListings::new(&world)?;
        const BATCH: usize = 500;
        const BATCHES: usize = 6;
        for batch in 0..BATCHES {
            raw.produce(batch * BATCH..(batch + 1) * BATCH).await?;
            if batch == 1 {
                // A crash: no grace period, the process is killed.
                let pod = world.pods_of(TRANSFORM, "transform").await?;
                let pod = pod.first().context("no transform pod")?.name_any();
                world
                    .api::<Pod>()
                    .delete(&pod, &DeleteParams::default().grace_period(0))
                    .await?;
            }
            if batch == 3 {
                // A clean stop: SIGTERM, the sink drains and commits what it wrote.
                let pod = world.pods_of("listings", "sink").await?;
                let pod = pod.first().context("no sink pod")?.name_any();
                world
                    .api::<Pod>()
                    .delete(&pod, &DeleteParams::default())
                    .await?;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        let total = BATCH * BATCHES;
        let rows = world.wait_for_rows(total).await?;
        assert!(rows.iter().all(|r| r.source == "example-portal"));
        let ids: BTreeSet<_> = rows.iter().map(|r| r.listing_id.clone()).collect();
        assert_eq!(ids, listing_ids(0..total));
        let normalised =
            observe::committed_records(&world.env, &world.topic("listings.normalised")).await?;
        let keys: BTreeSet<_> = normalised
            .iter()
            .filter_map(|(key, _)| key.clone())
            .collect();
        assert_eq!(
            (normalised.len(), keys.len()),
            (total, total),
            "every record exactly once in the transform's output"
        );
        // The Deployments replaced the deleted pods.
        assert_eq!(world.pods_of(TRANSFORM, "transform").await?.len(), 2);
        assert_eq!(world.pods_of("listings", "sink").await?.len(), 2);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_program_change_rolls_the_pods_and_an_invalid_one_does_not() -> Result<()> {
    with_world(|world| async move {
        world
            .apply_single_transform(TRANSFORM, |spec| {
                spec["program"] = json!(".version = 1\n");
            })
            .await?;
        let (first_hash, first_pods) = wait::until("the first rollout", CONVERGE, || {
            transform::rolled_out(&world, TRANSFORM)
        })
        .await?;

        let raw = RawListings::new(&world)?;
        let output = kafka::consumer(
            &world.env,
            &world.topic("listings.normalised"),
            "read_committed",
        )?;
        let version = |records: Vec<(Option<String>, Option<String>)>| -> Result<Value> {
            let payload = records[0].1.clone().context("no payload")?;
            Ok(serde_json::from_str::<Value>(&payload)?["version"].clone())
        };
        raw.produce(0..1).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(1)
        );

        // An invalid program: the diagnostic in status, the running pod untouched.
        transform::set_program(&world, TRANSFORM, ".version = 2 +\n").await?;
        let message = program_invalid(&world).await?;
        assert!(
            message.contains("1:"),
            "the diagnostic has a line and column: {message}"
        );
        let live = world.api::<StreamTransform>().get(TRANSFORM).await?;
        let health = argocd::health(&serde_json::to_value(live)?)?;
        assert_eq!(health.status, "Degraded", "{health:?}");
        assert!(health.message.contains(&message), "{health:?}");
        raw.produce(1..2).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(1)
        );
        let (hash, pods) = transform::rolled_out(&world, TRANSFORM)
            .await?
            .map_err(anyhow::Error::msg)?;
        assert_eq!((hash, pods), (first_hash.clone(), first_pods.clone()));

        // A valid change rolls the pods; records after the rollout follow it.
        transform::set_program(&world, TRANSFORM, ".version = 2\n").await?;
        let (hash, pods) = wait::until("the second rollout", CONVERGE, || async {
            Ok(match transform::rolled_out(&world, TRANSFORM).await? {
                Ok((hash, _)) if hash == first_hash => Err("the old config hash".to_owned()),
                other => other,
            })
        })
        .await?;
        assert_ne!(hash, first_hash);
        assert!(pods.iter().all(|pod| !first_pods.contains(pod)));
        raw.produce(2..3).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(2)
        );

        // A SQL program in its place runs in the same image on the node; one that does
        // not plan is reported with its position and not rolled out either.
        transform::set_sql(&world, TRANSFORM, "SELECT 3 AS version, id FROM records").await?;
        let (sql_hash, sql_pods) = wait::until("the SQL rollout", CONVERGE, || async {
            Ok(match transform::rolled_out(&world, TRANSFORM).await? {
                Ok((sql_hash, _)) if sql_hash == hash => Err("the VRL config hash".to_owned()),
                other => other,
            })
        })
        .await?;
        raw.produce(3..4).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(3)
        );
        transform::set_sql(
            &world,
            TRANSFORM,
            "SELECT 4 AS version\nFROM records ORDER BY id",
        )
        .await?;
        let message = program_invalid(&world).await?;
        assert!(
            message.starts_with("2:23: ORDER BY is not allowed"),
            "the planner's diagnostic with its position: {message}"
        );
        raw.produce(4..5).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(3)
        );
        let rolled = transform::rolled_out(&world, TRANSFORM)
            .await?
            .map_err(anyhow::Error::msg)?;
        assert_eq!(rolled, (sql_hash, sql_pods));
        Ok(())
    })
    .await
}

/// The message of the cleaning transform's `ProgramValid` condition once it is False.
async fn program_invalid(world: &World) -> Result<String> {
    wait::until("ProgramValid=False", CONVERGE, || async {
        Ok(
            match transform::condition(world, TRANSFORM, "ProgramValid").await? {
                Some(c) if c.status == "False" => Ok(c.message),
                other => Err(format!("{other:?}")),
            },
        )
    })
    .await
}

/// The operator as users install it: the chart's two replicas on the node, under the
/// chart's ServiceAccount and RBAC. Its leader pod is killed while records flow; the
/// other replica takes the Lease over and the pipeline loses and duplicates nothing.
/// The rights it worked with are enough, and what it must not do is refused.
#[tokio::test]
async fn the_chart_installed_operator_survives_losing_its_leader_under_least_privilege()
-> Result<()> {
    let (env, client) = ready_stack().await?;
    let outer = client.clone();
    kubernetes::with_temp_ns(&outer, |operator_ns| async move {
        let release = homestream_tests::random_name("homestream");
        let watched = kubernetes::with_temp_ns(&client.clone(), |namespace| {
            let (env, client, operator_ns, release) = (
                env.clone(),
                client.clone(),
                operator_ns.clone(),
                release.clone(),
            );
            async move {
                chart::install(&env, &release, &operator_ns, &namespace).await?;
                let operators: Api<Pod> = Api::namespaced(client.clone(), &operator_ns);
                let selector = format!("app.kubernetes.io/instance={release}");
                let pods = operators
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items;
                ensure!(pods.len() == 2, "{} operator pods, expected 2", pods.len());
                for pod in &pods {
                    let spec = pod.spec.as_ref().context("pod without spec")?;
                    assert_eq!(spec.node_name.as_deref(), Some(env.node.name.as_str()));
                    assert_eq!(
                        spec.containers[0].image.as_deref(),
                        Some(concat!("homestream-operator:", env!("CARGO_PKG_VERSION")))
                    );
                }

                let world = World::new(env.clone(), client.clone(), namespace.clone()).await?;
                let objects = world.start_transform_and_sink().await?;

                let leases: Api<Lease> = Api::namespaced(client.clone(), &operator_ns);
                let holder = |lease: Lease| lease.spec.and_then(|spec| spec.holder_identity);
                let leader = holder(leases.get(&release).await?).context("no leader")?;
                let raw = RawListings::new(&world)?;
                const BATCH: usize = 300;
                raw.produce(0..BATCH).await?;
                operators
                    .delete(&leader, &DeleteParams::default().grace_period(0))
                    .await?;
                raw.produce(BATCH..2 * BATCH).await?;
                let successor = wait::until("another replica to lead", CONVERGE, || async {
                    Ok(match holder(leases.get(&release).await?) {
                        Some(holder) if holder != leader => Ok(holder),
                        other => Err(format!("held by {other:?}")),
                    })
                })
                .await?;
                // The standby, or the replica the Deployment started in the leader's
                // place, whichever asks first once the lease has expired.
                let now: Vec<String> = operators
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect();
                assert!(now.contains(&successor), "{successor} is not among {now:?}");

                // A change only the new leader can roll out: a third sink replica.
                let sinks: Api<CassandraSink> = world.api();
                let scale = Patch::Merge(json!({ "spec": { "replicas": 3 } }));
                sinks
                    .patch("listings", &PatchParams::default(), &scale)
                    .await?;
                raw.produce(2 * BATCH..3 * BATCH).await?;
                let rows = world.wait_for_rows(3 * BATCH).await?;
                let ids: BTreeSet<_> = rows.iter().map(|r| r.listing_id.clone()).collect();
                assert_eq!(ids, listing_ids(0..3 * BATCH));
                wait::until("the new leader to scale the sink", CONVERGE, || async {
                    let n = world.pods_of("listings", "sink").await?.len();
                    Ok(if n == 3 {
                        Ok(())
                    } else {
                        Err(format!("{n} sink pods"))
                    })
                })
                .await?;

                // Least privilege: the account it converged under may write status,
                // never read Secrets, create pods or touch anything cluster-wide.
                let account = (operator_ns.as_str(), release.as_str());
                let status = ("homestream.io", "streamtransforms/status");
                assert!(chart::may(&client, account, "patch", status, &namespace).await?);
                assert!(!chart::may(&client, account, "get", ("", "secrets"), &namespace).await?);
                assert!(!chart::may(&client, account, "create", ("", "pods"), &namespace).await?);
                assert!(
                    !chart::may(&client, account, "list", ("", "secrets"), &operator_ns).await?
                );
                assert!(!chart::may(&client, account, "delete", ("", "nodes"), "").await?);
                assert!(
                    !chart::may(
                        &client,
                        account,
                        "get",
                        ("apps", "deployments"),
                        &operator_ns
                    )
                    .await?,
                    "watching one namespace, it has no rights elsewhere"
                );

                // Delete the pipeline while its operator runs, so no finalizer is left.
                world.delete(&objects).await
            }
        })
        .await;
        let uninstall = chart::uninstall(&env, &release, &operator_ns).await;
        watched?;
        uninstall
    })
    .await
}

/// A transform whose memory limit is below what the runtime needs for its load (a burst
/// of 40 000 records to fetch and clean): the kernel kills it at the limit the kubelet
/// set, the kubelet restarts it, and its status says so; with room to run, the new pod
/// is Ready and the restarts are history.
#[tokio::test]
async fn an_oom_killed_transform_is_restarted_and_its_status_says_why() -> Result<()> {
    with_world(|world| async move {
        let objects = world
            .apply_single_transform(TRANSFORM, |spec| {
                spec["template"] = json!({ "resources": { "limits": { "memory": "12Mi" } } });
            })
            .await?;
        // Idle, the runtime fits in 12 MiB now and then; fetching a burst it does not.
        RawListings::new(&world)?.produce_burst(0..40_000).await?;

        let workload_ready = || transform::condition(&world, TRANSFORM, "WorkloadReady");
        let message = wait::until("the kubelet to restart the transform", CONVERGE, || async {
            Ok(match workload_ready().await? {
                Some(c) if c.message.contains("last: OOMKilled (exit code 137)") => Ok(c.message),
                other => Err(format!("{other:?}")),
            })
        })
        .await?;
        // 12 MiB is at the edge of what the runtime needs: a restarted pod may get by for
        // a while, so whether it is Ready at this moment is not the point.
        assert!(message.contains("; containers restarted"), "{message:?}");

        let room =
            json!({ "spec": { "template": { "resources": { "limits": { "memory": "256Mi" } } } } });
        world
            .api::<StreamTransform>()
            .patch(TRANSFORM, &PatchParams::default(), &Patch::Merge(room))
            .await?;
        wait::until(
            "the transform to run within its new limit",
            CONVERGE,
            || async {
                Ok(match workload_ready().await? {
                    Some(c) if c.reason == "Available" && c.message == "1 of 1 pods ready" => {
                        Ok(())
                    }
                    other => Err(format!("{other:?}")),
                })
            },
        )
        .await?;
        world.delete(&objects).await
    })
    .await
}
