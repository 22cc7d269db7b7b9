//! One end-to-end test's world: a namespace of its own with its own operator (its
//! default brokers on the stack's plaintext listener or a secured one), the pipeline's
//! objects isolated in the test's topics and keyspace, and what the test waits for.

use std::future::Future;

use anyhow::{Result, ensure};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, DynamicObject, ListParams};
use kube::{Api, Client, Resource, ResourceExt};
use scylla::client::session::Session;
use serde_json::{Value, json};

use super::CONVERGE;
use crate::demo::observe::{self, ListingRow};
use crate::demo::pipeline::{self, Isolation};
use crate::demo::site;
use crate::lake::Engine;
use crate::local_cluster::{LocalOperator, ensure_node};
use crate::secure_kafka::{self, CredentialFiles};
use crate::{StackEnv, crds, kafka, kubernetes, manifests, wait};

/// A Delta table row as Trino returns it, as a Cassandra listing row.
fn listing_row(row: &Value) -> Result<ListingRow> {
    let text = |key: &str| row[key].as_str().map(str::to_owned);
    Ok(ListingRow {
        source: text("source").unwrap_or_default(),
        listing_id: text("listing_id").unwrap_or_default(),
        monthly_price_minor: row["monthly_price_minor"].as_i64(),
        price_label: text("price_label"),
        beds: row["beds"].as_i64().map(i32::try_from).transpose()?,
        baths: row["baths"].as_i64().map(i32::try_from).transpose()?,
        address: text("address"),
        outward_code: text("outward_code"),
        scraped_at_ms: row["scraped_at_ms"].as_i64(),
    })
}

/// The site address of pipeline objects taken without their ScrapeJobs: nothing
/// fetches from it.
const NO_SITE: &str = "http://127.0.0.1:9";

/// One test's world: stack endpoints, a client, its namespace's isolation, Cassandra.
pub struct World {
    /// The stack's endpoints.
    pub env: StackEnv,
    /// A client of the stack's apiserver.
    pub client: Client,
    /// The test's namespace, the only one its operator watches.
    pub namespace: String,
    /// The topics and keyspace of the test's copy of the pipeline.
    pub isolation: Isolation,
    /// A session on the stack's Cassandra.
    pub session: Session,
}

impl World {
    /// The world of `namespace`, its topics prefixed and its keyspace named after it.
    ///
    /// # Errors
    /// When Cassandra cannot be reached.
    pub async fn new(env: StackEnv, client: Client, namespace: String) -> Result<Self> {
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

    /// The test's name of the pipeline's `topic`.
    pub fn topic(&self, topic: &str) -> String {
        self.isolation.topic(topic)
    }

    /// The API of `K` objects in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The whole demo pipeline, its ScrapeJobs reading a demo site started for this
    /// test where the node's pods reach it.
    ///
    /// # Errors
    /// When the site cannot listen or a manifest cannot be read.
    pub async fn demo_pipeline(&self) -> Result<Vec<DynamicObject>> {
        let site = site::start((self.env.node.host_ip, 0).into(), pipeline::API_KEY).await?;
        pipeline::objects(&site.url(""), Some(&self.isolation))
    }

    /// The pipeline's objects named `names`, none of them a ScrapeJob.
    ///
    /// # Errors
    /// When a manifest cannot be read or one of `names` is not in the pipeline.
    pub fn objects(&self, names: &[&str]) -> Result<Vec<DynamicObject>> {
        let objects: Vec<DynamicObject> = pipeline::objects(NO_SITE, Some(&self.isolation))?
            .into_iter()
            .filter(|o| names.contains(&o.name_any().as_str()))
            .collect();
        ensure!(
            objects.len() == names.len(),
            "not all of {names:?} are in the pipeline"
        );
        Ok(objects)
    }

    /// Applies `objects` into the test's namespace as a user would.
    ///
    /// # Errors
    /// When the apiserver refuses one.
    pub async fn apply(&self, objects: &[DynamicObject]) -> Result<()> {
        pipeline::apply(&self.client, &self.namespace, objects).await
    }

    /// Applies `objects` of a pipeline without its scrapers, creating `listings.raw`
    /// first: the StreamTransform waits for its input topic, which the scrapers would
    /// otherwise create.
    ///
    /// # Errors
    /// When the topic cannot be created or the apiserver refuses an object.
    pub async fn apply_without_scrapers(&self, objects: &[DynamicObject]) -> Result<()> {
        kafka::create_topic(&self.env, &self.topic("listings.raw"), 6).await?;
        self.apply(objects).await
    }

    /// Applies the pipeline's StreamTransform `name` alone, with one replica and
    /// `change` made to its spec, fed by `listings.raw`; returns what it applied.
    ///
    /// # Errors
    /// When it is not in the pipeline or cannot be applied.
    pub async fn apply_single_transform(
        &self,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Vec<DynamicObject>> {
        let mut objects = self.objects(&[name])?;
        let spec = &mut pipeline::named(&mut objects, name).data["spec"];
        spec["replicas"] = json!(1);
        change(spec);
        self.apply_without_scrapers(&objects).await?;
        Ok(objects)
    }

    /// The cleaning transform and the listings sink, Ready, fed by `listings.raw`.
    ///
    /// # Errors
    /// When they cannot be applied or are not Ready within [`CONVERGE`].
    pub async fn start_transform_and_sink(&self) -> Result<Vec<DynamicObject>> {
        let objects = self.objects(&["normalise-listings", "listings"])?;
        self.apply_without_scrapers(&objects).await?;
        self.wait_for_rows(0).await?;
        Ok(objects)
    }

    /// The rows of the test's `listings` table (none while it does not exist).
    pub async fn rows(&self) -> Vec<ListingRow> {
        observe::listing_rows(&self.session, &self.isolation.keyspace)
            .await
            .unwrap_or_default()
    }

    /// Waits until `keyspace.listings` holds `n` rows and every resource is Ready.
    ///
    /// # Errors
    /// When that does not happen within [`CONVERGE`].
    pub async fn wait_for_rows(&self, n: usize) -> Result<Vec<ListingRow>> {
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

    /// Waits until Trino, the engine Athena is built on, reads `n` listings from the
    /// test's Delta table (registered in Trino's metastore under schema `e2e`), and
    /// returns them as the Cassandra rows are read.
    ///
    /// # Errors
    /// When Trino fails, or has fewer rows after [`CONVERGE`].
    pub async fn wait_for_lake_rows(&self, n: usize) -> Result<Vec<ListingRow>> {
        let location = self.isolation.location("s3://homestream/lake/listings");
        let table = format!("delta.e2e.{}", self.isolation.keyspace);
        let trino = |sql: String| async move { self.env.lake.query(Engine::Trino, &sql).await };
        trino("CREATE SCHEMA IF NOT EXISTS delta.e2e".to_owned()).await?;
        wait::until(&format!("{n} listings in {table}"), CONVERGE, || async {
            // The table exists once the operator created it: register it then.
            if trino(format!("SELECT 1 AS one FROM {table} LIMIT 1")).await.is_err()
                && let Err(error) = trino(format!(
                    "CALL delta.system.register_table(schema_name => 'e2e', table_name => '{}', \
                     table_location => '{location}')",
                    self.isolation.keyspace
                ))
                .await
            {
                return Ok(Err(error.to_string()));
            }
            let rows = trino(format!(
                "SELECT source, listing_id, monthly_price_minor, price_label, beds, baths, address, \
                 outward_code, CAST(to_unixtime(scraped_at) * 1000 AS BIGINT) AS scraped_at_ms FROM {table}"
            ))
            .await?;
            Ok(if rows.len() >= n {
                Ok(rows.iter().map(listing_row).collect::<Result<Vec<_>>>())
            } else {
                Err(format!("{} rows", rows.len()))
            })
        })
        .await?
    }

    /// Waits until the test's `table` no longer exists.
    ///
    /// # Errors
    /// When it is still there after [`CONVERGE`].
    pub async fn wait_for_table_dropped(&self, table: &str) -> Result<()> {
        wait::until(&format!("{table} to be dropped"), CONVERGE, || async {
            Ok(
                match observe::count_rows(&self.session, &self.isolation.keyspace, table).await {
                    Err(_) => Ok(()),
                    Ok(n) => Err(format!("still there with {n} rows")),
                },
            )
        })
        .await
    }

    /// Deletes `objects` and waits until they are gone (their finalizers done).
    ///
    /// # Errors
    /// When one cannot be deleted or is still there after [`CONVERGE`].
    pub async fn delete(&self, objects: &[DynamicObject]) -> Result<()> {
        for object in objects {
            let api = manifests::api_for(&self.client, &self.namespace, object)?;
            api.delete(&object.name_any(), &DeleteParams::default())
                .await?;
        }
        for object in objects {
            let api = manifests::api_for(&self.client, &self.namespace, object)?;
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

    /// The running pods of a resource's Deployment (`component`: transform or sink).
    ///
    /// # Errors
    /// When the pods cannot be listed.
    pub async fn pods_of(&self, resource: &str, component: &str) -> Result<Vec<Pod>> {
        Ok(self
            .pods_with_terminating(resource, component)
            .await?
            .into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .collect())
    }

    /// Every pod of a resource's Deployment, those still stopping included: the kubelet
    /// removes a pod only once its containers have stopped.
    ///
    /// # Errors
    /// When the pods cannot be listed.
    pub async fn pods_with_terminating(&self, resource: &str, component: &str) -> Result<Vec<Pod>> {
        let selector = format!(
            "app.kubernetes.io/instance={resource},app.kubernetes.io/component={component}"
        );
        let pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(pods.items)
    }

    /// Waits until no pod of the namespace is left but finished ones.
    ///
    /// # Errors
    /// When some still run after [`CONVERGE`].
    pub async fn wait_for_pods_gone(&self) -> Result<()> {
        wait::until("the pipeline's pods to be gone", CONVERGE, || async {
            let left: Vec<String> = self
                .api::<Pod>()
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
        .await
    }
}

/// Which of the stack's Kafka listeners the operator makes the pipeline's default brokers.
#[derive(Clone, Copy, Debug)]
pub enum Listener {
    /// No TLS, no authentication.
    Plaintext,
    /// SCRAM-SHA-512 over TLS: the runtime pods' CA and login from the namespace's
    /// Secrets, the operator's own from files.
    SaslSsl,
    /// TLS with client certificates: the runtime pods' CA, certificate and key from
    /// the namespace's Secrets, the operator's own from files.
    MutualTls,
}

/// The stack's endpoints and a client of its apiserver, once the committed CRDs are
/// installed and the node is Ready.
///
/// # Errors
/// When the stack is not up, or the CRDs or the node are not ready.
pub async fn ready_stack() -> Result<(StackEnv, Client)> {
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    crds::install(&client).await?;
    ensure_node(&env, &client).await?;
    Ok((env, client))
}

/// Runs `test` in a fresh namespace with its own operator, the stack's node Ready.
///
/// # Errors
/// The test's error, or a failure to set its world up.
pub async fn with_world<F, Fut>(test: F) -> Result<()>
where
    F: FnOnce(World) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    with_world_on(Listener::Plaintext, test).await
}

/// [`with_world`] with the operator's default brokers on `listener`.
///
/// # Errors
/// The test's error, or a failure to set its world up.
pub async fn with_world_on<F, Fut>(listener: Listener, test: F) -> Result<()>
where
    F: FnOnce(World) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let (env, client) = ready_stack().await?;
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
                secure_kafka::create_secrets(&client, &namespace, secrets).await?;
                let files =
                    scram_files.insert(CredentialFiles::new(&env, &env.kafka_secure.password)?);
                secure_kafka::operator_args(&env, files, Some(&env.kafka_secure.ca_file))
            }
            Listener::MutualTls => {
                let secrets = vec![
                    secure_kafka::ca_secret(&env)?,
                    secure_kafka::certificate_secret(&env)?,
                ];
                secure_kafka::create_secrets(&client, &namespace, secrets).await?;
                secure_kafka::mutual_tls_operator_args(&env)
            }
        };
        // The DeltaSink's pods read the stack's S3 key as the operator's defaults say.
        secure_kafka::create_secrets(&client, &namespace, vec![env.lake.key_secret()]).await?;
        let _operator = LocalOperator::start_with(&env, &namespace, &args)?;
        let world = World::new(env, client, namespace).await?;
        test(world).await
    })
    .await
}
