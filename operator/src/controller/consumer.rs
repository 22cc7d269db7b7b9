//! The phases StreamTransforms and CassandraSinks share as consumers of a topic: the
//! input topic must exist, their declared topics are converged, and once every gate
//! holds (their own checks: program, schema) the ConfigMap and Deployment are applied;
//! then the Deployment and the consumer lag are observed.

use homestream_crds::conditions::{INPUT_TOPIC_READY, TOPIC_READY};
use homestream_crds::connection::{CassandraConnection, KafkaConnection};
use homestream_crds::runtime::{ResolvedCassandra, ResourceIdentity, RuntimeConfig};
use homestream_crds::topic::{TopicInput, TopicSpec};
use homestream_crds::workload::PodTemplate;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, Error, apply, created, topics, workload_status};
use crate::build::config_map::{config_hash, config_map};
use crate::build::labels::Owner;
use crate::build::pod::{PodInputs, credential_env, pod_template};
use crate::build::workload::deployment;
use crate::kafka::TopicDefaults;
use crate::status::Observed;

/// What a consumer resource asks for.
pub struct ConsumerSpec<'a, K, S> {
    /// The resource (the record of the topics created for it is kept on it).
    pub resource: &'a K,
    /// The resource's identity and children's owner.
    pub owner: &'a Owner,
    /// Generation, for the runtime config.
    pub generation: i64,
    /// The spec as the user wrote it (goes into the runtime config).
    pub spec: &'a S,
    /// The topic read.
    pub input: &'a TopicInput,
    /// The topics written (output, dead letter).
    pub declared: Vec<&'a TopicSpec>,
    /// Pods.
    pub replicas: u32,
    /// Kafka overrides.
    pub kafka: Option<&'a KafkaConnection>,
    /// Cassandra overrides and whether the runtime needs Cassandra.
    pub cassandra: Option<Option<&'a CassandraConnection>>,
    /// Pod overrides.
    pub template: Option<&'a PodTemplate>,
    /// Conditions of the kind's own checks; the workload rolls out only when all hold.
    pub gates: Vec<Observed>,
}

/// What the shared phases found.
pub struct ConsumerObservation {
    /// The gates, then `InputTopicReady`, `TopicReady` and `WorkloadReady`.
    pub conditions: Vec<Observed>,
    /// A rollout under way.
    pub rollout: Option<String>,
    /// Ready pods.
    pub ready_replicas: i32,
    /// Consumer lag, when Kafka answered.
    pub lag: Option<i64>,
    /// Why Kafka did not answer, as the conditions' reason: the caller then backs off
    /// and counts the failure.
    pub kafka_failure: Option<String>,
    /// Whether this reconcile applied the workload.
    pub applied: bool,
}

/// Runs the shared phases for a consumer resource.
///
/// # Errors
/// When the apiserver fails a request.
pub async fn converge<K, S>(
    ctx: &Context,
    consumer: ConsumerSpec<'_, K, S>,
) -> Result<ConsumerObservation, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize + Clone,
{
    let owner = consumer.owner;
    let kafka_settings = ctx.config.resolve_kafka(consumer.kafka);
    let identity = ResourceIdentity {
        kind: owner.reference.kind.clone(),
        namespace: owner.namespace.clone(),
        name: owner.name.clone(),
        generation: consumer.generation,
    };
    let declared: Vec<_> = consumer
        .declared
        .iter()
        .map(|topic| topics::declaration(consumer.resource, topic))
        .collect();
    let everyone = ctx.declarations.all();
    let defaults = TopicDefaults {
        partitions: ctx.config.default_partitions,
        replication_factor: ctx.config.default_replication_factor,
    };
    let kafka_outcome = async {
        let admin = ctx.kafka(&kafka_settings.endpoint())?;
        let input = topics::input(&admin, consumer.input.topic.as_str()).await?;
        let output = topics::converge(&admin, &declared, &everyone, defaults).await?;
        Ok::<_, crate::kafka::KafkaAdminError>((admin, input, output))
    }
    .await;
    // The admin client, when Kafka answered (otherwise the caller backs off).
    let (admin, input_condition, topic_condition, created) = match kafka_outcome {
        Ok((admin, input, output)) => (Some(admin), input, output.condition, output.created),
        Err(error) => {
            let bootstrap = kafka_settings.bootstrap_servers.join(",");
            (
                None,
                topics::kafka_unavailable(INPUT_TOPIC_READY, &bootstrap, &error),
                topics::kafka_unavailable(TOPIC_READY, &bootstrap, &error),
                Vec::new(),
            )
        }
    };
    // Recorded before anything else can fail: an unrecorded topic would be retained.
    created::record(ctx, consumer.resource, created::TOPICS, &created).await?;
    let gates_hold =
        consumer.gates.iter().all(|g| g.status) && input_condition.status && topic_condition.status;
    if gates_hold {
        let cassandra: Option<ResolvedCassandra> =
            consumer.cassandra.map(|c| ctx.config.resolve_cassandra(c));
        let config = RuntimeConfig {
            resource: identity.clone(),
            spec: consumer.spec.clone(),
            kafka: kafka_settings.runtime(),
            cassandra,
        };
        let config_map = config_map(owner, &config)?;
        let hash = config_hash(&config_map);
        let template = pod_template(PodInputs {
            owner,
            image: &ctx.config.transformer_image,
            config_hash: &hash,
            env: credential_env(
                kafka_settings.sasl.as_ref(),
                consumer.cassandra.flatten(),
                &[],
            ),
            overrides: consumer.template,
            kafka_tls: kafka_settings.tls.as_ref(),
            restart_policy: None,
        });
        // The ConfigMap first: the pods of the new Deployment read it at start.
        apply(&ctx.client, &config_map).await?;
        apply(&ctx.client, &deployment(owner, consumer.replicas, template)).await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let current = deployments.get_opt(&owner.child_name()).await?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let pods = pods
        .list(&ListParams::default().labels(&owner.label_selector()))
        .await?;
    let (workload, rollout, ready_replicas) =
        workload_status::deployment(current.as_ref(), consumer.replicas, &pods.items);
    let lag = match &admin {
        Some(admin) if input_condition.status => {
            let group = identity.consumer_group(consumer.input);
            match admin
                .consumer_lag(&group, consumer.input.topic.as_str())
                .await
            {
                Ok(lag) => Some(lag),
                Err(error) => {
                    tracing::warn!(%error, "Could not read consumer lag.");
                    None
                }
            }
        }
        _ => None,
    };
    let kafka_failure = admin.is_none().then(|| topic_condition.reason.clone());
    let mut conditions = consumer.gates;
    conditions.extend([input_condition, topic_condition, workload]);
    Ok(ConsumerObservation {
        conditions,
        rollout,
        ready_replicas,
        lag,
        kafka_failure,
        applied: gates_hold,
    })
}
