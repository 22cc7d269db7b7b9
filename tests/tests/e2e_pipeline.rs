//! End to end, as on a cluster: the operator binary, the stack's node (kubelet,
//! containerd) running the pods the operator creates from the project's images, the
//! demo site, and the pipeline of `manifests/examples/` on the real apiserver, Kafka
//! and Cassandra of the local stack. Each test has its own namespace, operator, topics
//! and keyspace; the node is shared.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use homestream_crds::{CassandraSink, StreamTransform};
use homestream_tests::demo::observe::{self, ListingRow};
use homestream_tests::demo::pipeline::{self, Isolation};
use homestream_tests::demo::{homes, site};
use homestream_tests::local_cluster::{LocalOperator, ensure_node};
use homestream_tests::secure_kafka::{self, CredentialFiles};
use homestream_tests::{StackEnv, argocd, chart, crds, kafka, kubernetes, wait};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use scylla::client::session::Session;
use serde_json::{Value, json};

/// How long a pipeline may take to converge or drain here (debug builds, 2 cores).
const CONVERGE: Duration = Duration::from_secs(240);

/// One test's world: stack endpoints, a client, its namespace's isolation, Cassandra.
struct World {
    env: StackEnv,
    client: Client,
    namespace: String,
    isolation: Isolation,
    session: Session,
}

impl World {
    async fn new(env: StackEnv, client: Client, namespace: String) -> Result<Self> {
        let isolation = Isolation {
            topic_prefix: namespace.clone(),
            keyspace: namespace.replace('-', "_"),
        };
        let session = observe::cassandra(&env).await?;
        Ok(Self {
            env,
            client,
            namespace,
            isolation,
            session,
        })
    }

    fn topic(&self, topic: &str) -> String {
        self.isolation.topic(topic)
    }

    async fn apply(&self, objects: &[DynamicObject]) -> Result<()> {
        pipeline::apply(&self.client, &self.namespace, objects).await
    }

    async fn rows(&self) -> Vec<ListingRow> {
        observe::listing_rows(&self.session, &self.isolation.keyspace)
            .await
            .unwrap_or_default()
    }

    /// Waits until `keyspace.listings` holds `n` rows and every resource is Ready.
    async fn wait_for_rows(&self, n: usize) -> Result<Vec<ListingRow>> {
        wait::until(
            &format!("{n} listings and every resource Ready"),
            CONVERGE,
            || async {
                let rows = self.rows().await;
                let readiness = observe::readiness(&self.client, &self.namespace).await?;
                let not_ready = observe::not_ready(&readiness);
                Ok(if rows.len() == n && not_ready.is_empty() {
                    Ok(rows)
                } else {
                    Err(format!("{} rows; not ready: {not_ready:?}", rows.len()))
                })
            },
        )
        .await
    }

    /// The cleaning transform and the listings sink, Ready, fed by `listings.raw`
    /// (created here: the scrapers are not part of the tests that use it).
    async fn start_transform_and_sink(&self) -> Result<Vec<DynamicObject>> {
        let objects = objects(
            self,
            "http://127.0.0.1:9",
            &["normalise-listings", "listings"],
        )?;
        // The StreamTransform waits for its input topic.
        kafka::create_topic(&self.env, &self.topic("listings.raw"), 6).await?;
        self.apply(&objects).await?;
        self.wait_for_rows(0).await?;
        Ok(objects)
    }

    /// Deletes `objects` and waits until they are gone (their finalizers done).
    async fn delete(&self, objects: &[DynamicObject]) -> Result<()> {
        for object in objects {
            let api = homestream_tests::manifests::api_for(&self.client, &self.namespace, object)?;
            api.delete(&object.name_any(), &DeleteParams::default())
                .await?;
        }
        for object in objects {
            let api = homestream_tests::manifests::api_for(&self.client, &self.namespace, object)?;
            let name = object.name_any();
            wait::until(&format!("{name} to be deleted"), CONVERGE, || async {
                Ok(match api.get_opt(&name).await? {
                    None => Ok(()),
                    Some(_) => Err("still there".to_owned()),
                })
            })
            .await?;
        }
        Ok(())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The running pods of a resource's Deployment (`component`: transform or sink).
    async fn pods_of(&self, resource: &str, component: &str) -> Result<Vec<Pod>> {
        Ok(self
            .pods_with_terminating(resource, component)
            .await?
            .into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .collect())
    }

    /// Every pod of a resource's Deployment, those still stopping included: the kubelet
    /// removes a pod only once its containers have stopped.
    async fn pods_with_terminating(&self, resource: &str, component: &str) -> Result<Vec<Pod>> {
        let selector = format!(
            "app.kubernetes.io/instance={resource},app.kubernetes.io/component={component}"
        );
        let pods = self
            .pods()
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(pods.items)
    }
}

/// Which of the stack's Kafka listeners the operator makes the pipeline's default brokers.
#[derive(Clone, Copy, Debug)]
enum Listener {
    Plaintext,
    /// SCRAM-SHA-512 over TLS: the runtime pods' CA and login from the namespace's
    /// Secrets, the operator's own from files.
    SaslSsl,
    /// TLS with client certificates: the runtime pods' CA, certificate and key from
    /// the namespace's Secrets, the operator's own from files.
    MutualTls,
}

/// Creates `secrets` in `namespace`.
async fn create_secrets(
    client: &Client,
    namespace: &str,
    secrets: Vec<secure_kafka::SecretData>,
) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for (name, data) in secrets {
        let secret = serde_json::from_value(json!({
            "metadata": { "name": name }, "stringData": data
        }))?;
        api.create(&PostParams::default(), &secret).await?;
    }
    Ok(())
}

/// Runs `test` in a fresh namespace with its own operator, the stack's node Ready.
async fn with_world<F, Fut>(test: F) -> Result<()>
where
    F: FnOnce(World) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    with_world_on(Listener::Plaintext, test).await
}

/// [`with_world`] with the operator's default brokers on `listener`.
async fn with_world_on<F, Fut>(listener: Listener, test: F) -> Result<()>
where
    F: FnOnce(World) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    crds::install(&client).await?;
    ensure_node(&env, &client).await?;
    let outer = client.clone();
    kubernetes::with_temp_ns(&outer, |namespace| async move {
        // The operator's SCRAM files live as long as it does.
        let mut scram_files = None;
        let args = match listener {
            Listener::Plaintext => Vec::new(),
            Listener::SaslSsl => {
                let secrets = vec![
                    secure_kafka::ca_secret(&env)?,
                    secure_kafka::login_secret(&env),
                ];
                create_secrets(&client, &namespace, secrets).await?;
                let files =
                    scram_files.insert(CredentialFiles::new(&env, &env.kafka_secure.password)?);
                secure_kafka::operator_args(&env, files, Some(&env.kafka_secure.ca_file))
            }
            Listener::MutualTls => {
                let secrets = vec![
                    secure_kafka::ca_secret(&env)?,
                    secure_kafka::certificate_secret(&env)?,
                ];
                create_secrets(&client, &namespace, secrets).await?;
                secure_kafka::mutual_tls_operator_args(&env)
            }
        };
        let _operator = LocalOperator::start_with(&env, &namespace, &args)?;
        let world = World::new(env, client, namespace).await?;
        test(world).await
    })
    .await
}

/// The pipeline's objects named `names`, isolated for `world`, the site at `site`.
fn objects(world: &World, site: &str, names: &[&str]) -> Result<Vec<DynamicObject>> {
    let objects: Vec<DynamicObject> = pipeline::objects(site, Some(&world.isolation))?
        .into_iter()
        .filter(|o| names.contains(&o.name_any().as_str()))
        .collect();
    ensure!(
        objects.len() == names.len(),
        "not all of {names:?} are in the pipeline"
    );
    Ok(objects)
}

fn named<'o>(objects: &'o mut [DynamicObject], name: &str) -> &'o mut DynamicObject {
    objects
        .iter_mut()
        .find(|o| o.name_any() == name)
        .expect("the object is in the list")
}

/// Whether `object` is one of homestream's resources (not, say, a Secret).
fn is_resource(object: &DynamicObject) -> bool {
    object
        .types
        .as_ref()
        .is_some_and(|t| t.api_version.starts_with("homestream.io/"))
}

/// What a listings row must hold: monthly price in minor units, beds, baths, outward code.
type Cleaned = (Option<i64>, i32, i32, Option<String>);

/// The row the pipeline must write for each demo home, keyed by (source, listing id).
fn expected_rows() -> BTreeMap<(String, String), Cleaned> {
    let london = (1..=homes::LONDON_HOMES).map(homes::london_home).map(|h| {
        (
            ("london-rentals".to_owned(), h.id.to_string()),
            (
                h.monthly_pence,
                h.beds,
                h.baths,
                Some(h.outward_code.to_owned()),
            ),
        )
    });
    let la = (1..=homes::LA_HOMES).map(homes::la_home).map(|h| {
        (
            ("la-rentals".to_owned(), h.property_id),
            (Some(h.list_price * 100), h.beds, h.baths, None),
        )
    });
    london.chain(la).collect()
}

#[tokio::test]
async fn the_demo_pipeline_lands_every_listing_and_deletion_honours_each_policy() -> Result<()> {
    with_world(|world| async move {
        let site = site::start((world.env.node.host_ip, 0).into(), pipeline::API_KEY).await?;
        let mut objects = pipeline::objects(&site.url(""), Some(&world.isolation))?;
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
            let api =
                homestream_tests::manifests::api_for(&world.client, &world.namespace, resource)?;
            let live = serde_json::to_value(api.get(&resource.name_any()).await?)?;
            let health = argocd::health(&live)?;
            assert_eq!(
                health.status,
                "Healthy",
                "{}: {health:?}",
                resource.name_any()
            );
        }
        let found: BTreeMap<_, _> = rows
            .iter()
            .map(|r| {
                (
                    (r.source.clone(), r.listing_id.clone()),
                    (
                        r.monthly_price_minor,
                        r.beds.unwrap_or(-1),
                        r.baths.unwrap_or(-1),
                        r.outward_code.clone(),
                    ),
                )
            })
            .collect();
        assert_eq!(found, expected);
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
        let jobs = kube::Api::<homestream_crds::ScrapeJob>::namespaced(
            world.client.clone(),
            &world.namespace,
        );
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
        wait::until("the pipeline's pods to be gone", CONVERGE, || async {
            let left: Vec<String> = world
                .pods()
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|p| {
                    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                    !matches!(phase, Some("Succeeded" | "Failed"))
                })
                .map(ResourceExt::name_any)
                .collect();
            Ok(if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            })
        })
        .await?;
        wait::until("listing_prices to be dropped", CONVERGE, || async {
            Ok(
                match observe::count_rows(
                    &world.session,
                    &world.isolation.keyspace,
                    "listing_prices",
                )
                .await
                {
                    Err(_) => Ok(()),
                    Ok(n) => Err(format!("still there with {n} rows")),
                },
            )
        })
        .await?;
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
        let site = site::start((world.env.node.host_ip, 0).into(), pipeline::API_KEY).await?;
        let objects = pipeline::objects(&site.url(""), Some(&world.isolation))?;
        world.apply(&objects).await?;

        let expected = expected_rows();
        let rows = world.wait_for_rows(expected.len()).await?;
        let keys: BTreeSet<_> = rows
            .iter()
            .map(|r| (r.source.clone(), r.listing_id.clone()))
            .collect();
        assert_eq!(keys, expected.into_keys().collect());

        let config_maps: Api<ConfigMap> = Api::namespaced(world.client.clone(), &world.namespace);
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

/// A raw record as a scraper publishes it, for listing `n`.
fn raw_record(n: usize) -> (String, String) {
    let id = format!("load-{n}");
    let record = json!({
        "id": id,
        "price": format!("£{},{:03} pcm", 1 + n % 3, n % 1000),
        "beds": format!("{} bed", 1 + n % 4),
        "address": format!("{n} Caledonian Road, London N7 9RN"),
        "_meta": {"url": "https://www.example-portal.co.uk/to-rent/1", "job": "e2e/load", "scrapedAt": "2026-11-21T10:00:00Z"},
    });
    (id, record.to_string())
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<usize>,
) -> Result<()> {
    for n in range {
        let (key, payload) = raw_record(n);
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .with_context(|| format!("producing record {n}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn deleting_transform_and_sink_pods_mid_stream_loses_and_duplicates_nothing() -> Result<()> {
    with_world(|world| async move {
        world.start_transform_and_sink().await?;

        let producer: FutureProducer = kafka::client_config(&world.env).create()?;
        let raw = world.topic("listings.raw");
        const BATCH: usize = 500;
        const BATCHES: usize = 6;
        for batch in 0..BATCHES {
            produce(&producer, &raw, batch * BATCH..(batch + 1) * BATCH).await?;
            if batch == 1 {
                // A crash: no grace period, the process is killed.
                let pod = world.pods_of("normalise-listings", "transform").await?;
                let pod = pod.first().context("no transform pod")?.name_any();
                world
                    .pods()
                    .delete(&pod, &DeleteParams::default().grace_period(0))
                    .await?;
            }
            if batch == 3 {
                // A clean stop: SIGTERM, the sink drains and commits what it wrote.
                let pod = world.pods_of("listings", "sink").await?;
                let pod = pod.first().context("no sink pod")?.name_any();
                world.pods().delete(&pod, &DeleteParams::default()).await?;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        let total = BATCH * BATCHES;
        let rows = world.wait_for_rows(total).await?;
        assert!(rows.iter().all(|r| r.source == "example-portal"));
        let ids: BTreeSet<_> = rows.iter().map(|r| r.listing_id.clone()).collect();
        assert_eq!(ids, (0..total).map(|n| format!("load-{n}")).collect());
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
        assert_eq!(
            world
                .pods_of("normalise-listings", "transform")
                .await?
                .len(),
            2
        );
        assert_eq!(world.pods_of("listings", "sink").await?.len(), 2);
        Ok(())
    })
    .await
}

/// The transform's Deployment once it has rolled out: the pod template's config hash
/// and the names of its pods, when every replica is updated and ready and no old pod is
/// still stopping.
async fn rolled_out(world: &World) -> Result<Result<(String, Vec<String>), String>> {
    let deployments: Api<Deployment> = Api::namespaced(world.client.clone(), &world.namespace);
    let Some(deployment) = deployments.get_opt("normalise-listings-transform").await? else {
        return Ok(Err("no Deployment yet".to_owned()));
    };
    let hash = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("homestream.io/config-hash").cloned())
        .unwrap_or_default();
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    // Stopping pods count: until an old pod's process has exited it may still take records.
    let pods = world
        .pods_with_terminating("normalise-listings", "transform")
        .await?;
    let current = pods.iter().all(|pod| {
        pod.annotations().get("homestream.io/config-hash") == Some(&hash)
            && pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    Ok(
        if status.observed_generation == deployment.metadata.generation
            && status.updated_replicas == Some(wanted)
            && pods.len() == wanted as usize
            && current
        {
            Ok((hash, pods.iter().map(ResourceExt::name_any).collect()))
        } else {
            Err(format!("{status:?}; {} pods", pods.len()))
        },
    )
}

async fn set_program(world: &World, program: &str) -> Result<()> {
    let api = kube::Api::<homestream_crds::StreamTransform>::namespaced(
        world.client.clone(),
        &world.namespace,
    );
    let patch = json!({"spec": {"program": program}});
    api.patch(
        "normalise-listings",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_program_change_rolls_the_pods_and_an_invalid_one_does_not() -> Result<()> {
    with_world(|world| async move {
        let mut objects = objects(&world, "http://127.0.0.1:9", &["normalise-listings"])?;
        let transform = named(&mut objects, "normalise-listings");
        transform.data["spec"]["replicas"] = json!(1);
        transform.data["spec"]["program"] = json!(".version = 1\n");
        kafka::create_topic(&world.env, &world.topic("listings.raw"), 6).await?;
        world.apply(&objects).await?;
        let (first_hash, first_pods) =
            wait::until("the first rollout", CONVERGE, || rolled_out(&world)).await?;

        let producer: FutureProducer = kafka::client_config(&world.env).create()?;
        let raw = world.topic("listings.raw");
        let output = kafka::consumer(
            &world.env,
            &world.topic("listings.normalised"),
            "read_committed",
        )?;
        let version = |records: Vec<(Option<String>, Option<String>)>| -> Result<Value> {
            let payload = records[0].1.clone().context("no payload")?;
            Ok(serde_json::from_str::<Value>(&payload)?["version"].clone())
        };
        produce(&producer, &raw, 0..1).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(1)
        );

        // An invalid program: the diagnostic in status, the running pod untouched.
        set_program(&world, ".version = 2 +\n").await?;
        let api = kube::Api::<homestream_crds::StreamTransform>::namespaced(
            world.client.clone(),
            &world.namespace,
        );
        let message = wait::until("ProgramValid=False", CONVERGE, || async {
            let transform = api.get("normalise-listings").await?;
            let condition = transform
                .status
                .iter()
                .flat_map(|s| s.conditions.iter())
                .find(|c| c.type_ == "ProgramValid")
                .cloned();
            Ok(match condition {
                Some(c) if c.status == "False" => Ok(c.message),
                other => Err(format!("{other:?}")),
            })
        })
        .await?;
        assert!(
            message.contains("1:"),
            "the diagnostic has a line and column: {message}"
        );
        let health = argocd::health(&serde_json::to_value(api.get("normalise-listings").await?)?)?;
        assert_eq!(health.status, "Degraded", "{health:?}");
        assert!(health.message.contains(&message), "{health:?}");
        produce(&producer, &raw, 1..2).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(1)
        );
        let (hash, pods) = rolled_out(&world).await?.map_err(anyhow::Error::msg)?;
        assert_eq!((hash, pods), (first_hash.clone(), first_pods.clone()));

        // A valid change rolls the pods; records after the rollout follow it.
        set_program(&world, ".version = 2\n").await?;
        let (hash, pods) = wait::until("the second rollout", CONVERGE, || async {
            Ok(match rolled_out(&world).await? {
                Ok((hash, _)) if hash == first_hash => Err("the old config hash".to_owned()),
                other => other,
            })
        })
        .await?;
        assert_ne!(hash, first_hash);
        assert!(pods.iter().all(|pod| !first_pods.contains(pod)));
        produce(&producer, &raw, 2..3).await?;
        assert_eq!(
            version(kafka::collect_n(&output, 1, CONVERGE).await?)?,
            json!(2)
        );
        Ok(())
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
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    crds::install(&client).await?;
    ensure_node(&env, &client).await?;
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
                let producer: FutureProducer = kafka::client_config(&world.env).create()?;
                let raw = world.topic("listings.raw");
                const BATCH: usize = 300;
                produce(&producer, &raw, 0..BATCH).await?;
                operators
                    .delete(&leader, &DeleteParams::default().grace_period(0))
                    .await?;
                produce(&producer, &raw, BATCH..2 * BATCH).await?;
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
                let sinks: Api<CassandraSink> = Api::namespaced(client.clone(), &namespace);
                let scale = Patch::Merge(json!({ "spec": { "replicas": 3 } }));
                sinks
                    .patch("listings", &PatchParams::default(), &scale)
                    .await?;
                produce(&producer, &raw, 2 * BATCH..3 * BATCH).await?;
                let rows = world.wait_for_rows(3 * BATCH).await?;
                let ids: BTreeSet<_> = rows.iter().map(|r| r.listing_id.clone()).collect();
                assert_eq!(ids, (0..3 * BATCH).map(|n| format!("load-{n}")).collect());
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

/// The `WorkloadReady` condition of StreamTransform `name`: its reason and message.
async fn workload_ready(world: &World, name: &str) -> Result<Option<(String, String)>> {
    let transforms: Api<StreamTransform> = Api::namespaced(world.client.clone(), &world.namespace);
    let status = transforms.get(name).await?.status.unwrap_or_default();
    Ok(status
        .conditions
        .into_iter()
        .find(|c| c.type_ == "WorkloadReady")
        .map(|c| (c.reason, c.message)))
}

/// A transform whose memory limit is below what the runtime needs: the kernel kills it
/// at the limit the kubelet set, the kubelet restarts it, and its status says so; with
/// room to run, the new pod is Ready and the restarts are history.
#[tokio::test]
async fn an_oom_killed_transform_is_restarted_and_its_status_says_why() -> Result<()> {
    with_world(|world| async move {
        let mut objects = objects(&world, "http://127.0.0.1:9", &["normalise-listings"])?;
        let transform = named(&mut objects, "normalise-listings");
        transform.data["spec"]["replicas"] = json!(1);
        transform.data["spec"]["template"] =
            json!({ "resources": { "limits": { "memory": "12Mi" } } });
        kafka::create_topic(&world.env, &world.topic("listings.raw"), 6).await?;
        world.apply(&objects).await?;

        let message = wait::until("the kubelet to restart the transform", CONVERGE, || async {
            Ok(match workload_ready(&world, "normalise-listings").await? {
                Some((reason, message)) if message.contains("last: OOMKilled (exit code 137)") => {
                    Ok((reason, message))
                }
                other => Err(format!("{other:?}")),
            })
        })
        .await?;
        // 12 MiB is at the edge of what the runtime needs: a restarted pod may get by for
        // a while, so whether it is Ready at this moment is not the point.
        assert!(message.1.contains("; containers restarted"), "{message:?}");

        let transforms: Api<StreamTransform> =
            Api::namespaced(world.client.clone(), &world.namespace);
        let room =
            json!({ "spec": { "template": { "resources": { "limits": { "memory": "256Mi" } } } } });
        transforms
            .patch(
                "normalise-listings",
                &PatchParams::default(),
                &Patch::Merge(room),
            )
            .await?;
        wait::until(
            "the transform to run within its new limit",
            CONVERGE,
            || async {
                Ok(match workload_ready(&world, "normalise-listings").await? {
                    Some((reason, message))
                        if reason == "Available" && message == "1 of 1 pods ready" =>
                    {
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
