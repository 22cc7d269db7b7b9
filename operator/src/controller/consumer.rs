//! The phases StreamTransforms, CassandraSinks and DeltaSinks share as consumers of a
//! topic, in order: topics (the input must exist, the declared ones are converged), build (the
//! ConfigMap and Deployment, pure), apply (once every gate holds: the kind's own checks
//! and the topics), observe (the Deployment, its pods and the consumer lag).

use homestream_crds::connection::{CassandraConnection, KafkaConnection, S3Connection};
use homestream_crds::runtime::{ResourceIdentity, RuntimeConfig};
use homestream_crds::topic::{TopicInput, TopicSpec};
use homestream_crds::workload::PodTemplate;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::topics::{self, TopicPhase};
use super::{Context, Error, apply, workload_status};
use crate::build::labels::Owner;
use crate::build::pod::{credential_env, s3_credential_env};
use crate::build::runtime::{RuntimeChildren, RuntimeInputs, runtime_children};
use crate::build::workload::deployment;
use crate::config::KafkaSettings;
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
    /// Where the records go besides Kafka, which the runtime connects to.
    pub destination: Destination<'a>,
    /// Pod overrides.
    pub template: Option<&'a PodTemplate>,
    /// Conditions of the kind's own checks; the workload rolls out only when all hold.
    pub gates: Vec<Observed>,
}

/// Where a consumer writes besides Kafka topics, with the resource's connection
/// overrides: what its runtime must connect to.
#[derive(Clone, Copy, Debug)]
pub enum Destination<'a> {
    /// Only topics (a StreamTransform).
    Topics,
    /// A Cassandra table (a CassandraSink).
    Cassandra(Option<&'a CassandraConnection>),
    /// A Delta table on S3 (a DeltaSink).
    Lake(Option<&'a S3Connection>),
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
    let kafka = ctx.config.resolve_kafka(consumer.kafka);
    let topics = topics::run(
        ctx,
        consumer.resource,
        &kafka,
        &consumer.declared,
        Some(consumer.input.topic.as_str()),
    )
    .await?;
    let applied = consumer.gates.iter().all(|gate| gate.status) && topics.ready();
    if applied {
        let children = build(ctx, &consumer, &kafka)?;
        apply_children(ctx, children).await?;
    }
    let (workload, rollout, ready_replicas) = observe_workload(ctx, &consumer).await?;
    let lag = observe_lag(&consumer, &topics).await;
    let kafka_failure = topics.kafka_failure();
    let mut conditions = consumer.gates;
    conditions.extend(topics.input);
    conditions.extend([topics.output, workload]);
    Ok(ConsumerObservation {
        conditions,
        rollout,
        ready_replicas,
        lag,
        kafka_failure,
        applied,
    })
}

/// A consumer's children: its runtime configuration and its Deployment.
pub struct ConsumerChildren {
    /// The runtime configuration the pods read.
    pub config_map: ConfigMap,
    /// The transformer pods.
    pub deployment: Deployment,
}

/// Builds the children from the spec and the resolved connections.
///
/// # Errors
/// When the runtime configuration cannot be serialized.
pub fn build<K, S: Serialize + Clone>(
    ctx: &Context,
    consumer: &ConsumerSpec<'_, K, S>,
    kafka: &KafkaSettings,
) -> Result<ConsumerChildren, Error> {
    let (cassandra, cassandra_overrides) = match consumer.destination {
        Destination::Cassandra(overrides) => {
            (Some(ctx.config.resolve_cassandra(overrides)), overrides)
        }
        Destination::Topics | Destination::Lake(_) => (None, None),
    };
    let mut env = credential_env(kafka.sasl.as_ref(), cassandra_overrides, &[]);
    let s3 = match consumer.destination {
        Destination::Lake(overrides) => {
            let (s3, credentials) = ctx.config.resolve_s3(overrides);
            env.extend(credentials.iter().flat_map(s3_credential_env));
            Some(s3)
        }
        Destination::Topics | Destination::Cassandra(_) => None,
    };
    let config = RuntimeConfig {
        resource: identity(consumer),
        spec: consumer.spec.clone(),
        kafka: kafka.runtime(),
        cassandra,
        s3,
    };
    let RuntimeChildren {
        config_map,
        template,
        ..
    } = runtime_children(RuntimeInputs {
        owner: consumer.owner,
        config: &config,
        image: &ctx.config.transformer_image,
        env,
        kafka_tls: kafka.tls.as_ref(),
        overrides: consumer.template,
        restart_policy: None,
    })?;
    Ok(ConsumerChildren {
        config_map,
        deployment: deployment(consumer.owner, consumer.replicas, template),
    })
}

/// Applies the children in the order the pods need them.
async fn apply_children(ctx: &Context, children: ConsumerChildren) -> Result<(), Error> {
    let ConsumerChildren {
        config_map,
        deployment,
    } = children;
    // The ConfigMap first: the pods of the new Deployment read it at start.
    apply(&ctx.client, &config_map).await?;
    apply(&ctx.client, &deployment).await?;
    Ok(())
}

fn identity<K, S>(consumer: &ConsumerSpec<'_, K, S>) -> ResourceIdentity {
    ResourceIdentity {
        kind: consumer.owner.reference.kind.clone(),
        namespace: consumer.owner.namespace.clone(),
        name: consumer.owner.name.clone(),
        generation: consumer.generation,
    }
}

/// `WorkloadReady`, the rollout under way and the ready pods, from the Deployment and
/// its pods (their restarts and last terminations).
async fn observe_workload<K, S>(
    ctx: &Context,
    consumer: &ConsumerSpec<'_, K, S>,
) -> Result<(Observed, Option<String>, i32), Error> {
    let owner = consumer.owner;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let current = deployments.get_opt(&owner.child_name()).await?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let pods = pods
        .list(&ListParams::default().labels(&owner.label_selector()))
        .await?;
    Ok(workload_status::deployment(
        current.as_ref(),
        consumer.replicas,
        &pods.items,
    ))
}

/// The consumer group's lag on the input topic, when Kafka answered and the topic exists.
async fn observe_lag<K, S>(consumer: &ConsumerSpec<'_, K, S>, topics: &TopicPhase) -> Option<i64> {
    let admin = topics.admin.as_ref()?;
    if !topics.input.as_ref().is_some_and(|input| input.status) {
        return None;
    }
    let group = identity(consumer).consumer_group(consumer.input);
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
