//! The StreamTransform controller: input topic present, output and dead-letter topics
//! converged, program compiled, then the ConfigMap and Deployment of the transformer.

use std::sync::Arc;
use std::time::Instant;

use homestream_crds::conditions::{INPUT_TOPIC_READY, TOPIC_READY};
use homestream_crds::runtime::{ResourceIdentity, RuntimeConfig};
use homestream_crds::{StreamTransform, StreamTransformStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::{Context, Error, apply, backoff_key, patch_status, topics, workload_status};
use crate::build::config_map::{config_hash, config_map};
use crate::build::labels::{Component, Owner};
use crate::build::pod::{PodInputs, credential_env, pod_template};
use crate::build::workload::deployment;
use crate::controller::program;
use crate::kafka::TopicDefaults;
use crate::status::{Observed, conditions};

/// Reconciles one StreamTransform.
///
/// # Errors
/// When the apiserver fails a request.
#[tracing::instrument(skip_all, fields(namespace = %transform.namespace().unwrap_or_default(), name = %transform.name_any()))]
pub async fn reconcile(transform: Arc<StreamTransform>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let outcome = reconcile_phases(&transform, &ctx).await;
    ctx.metrics.reconciled("StreamTransform", started.elapsed().as_secs_f64());
    outcome
}

async fn reconcile_phases(transform: &StreamTransform, ctx: &Context) -> Result<Action, Error> {
    let previous = transform.status.clone().unwrap_or_default();
    let generation = transform.meta().generation;
    // Validate.
    let validated = match transform.spec.validate() {
        Ok(validated) => validated,
        Err(invalid) => {
            ctx.metrics.failed("StreamTransform", "InvalidSpec");
            let observed = vec![Observed::failed(TOPIC_READY, "InvalidSpec", invalid.to_string())];
            write_status(ctx, transform, &previous, status_with(transform, &previous, observed, None)).await?;
            return Ok(Action::await_change());
        }
    };
    let program = program::check(&validated.program);
    let kafka_settings = ctx.config.resolve_kafka(transform.spec.kafka.as_ref());
    let admin = ctx.kafka(&kafka_settings.bootstrap_servers)?;
    let owner_name = format!("StreamTransform {}/{}", transform.namespace().unwrap_or_default(), transform.name_any());
    let identity = ResourceIdentity {
        kind: "StreamTransform".to_owned(),
        namespace: transform.namespace().unwrap_or_default(),
        name: transform.name_any(),
        generation: generation.unwrap_or_default(),
    };
    // Converge the topics.
    let everyone = topics::all_declarations(&ctx.client).await?;
    let mut declared = vec![&validated.output];
    declared.extend(validated.dead_letter.as_ref());
    let defaults = TopicDefaults {
        partitions: ctx.config.default_partitions,
        replication_factor: ctx.config.default_replication_factor,
    };
    let kafka_outcome = async {
        let input = topics::input(&admin, validated.input.topic.as_str()).await?;
        let output = topics::converge(&admin, &owner_name, &declared, &everyone, defaults).await?;
        Ok::<_, crate::kafka::KafkaAdminError>((input, output))
    }
    .await;
    let (input_condition, topic_condition, kafka_up) = match kafka_outcome {
        Ok((input, output)) => (input, output, true),
        Err(error) => (
            topics::kafka_unavailable(INPUT_TOPIC_READY, &admin, &error),
            topics::kafka_unavailable(TOPIC_READY, &admin, &error),
            false,
        ),
    };
    // Build and apply the workload, unless something it needs is missing. An invalid
    // program never reaches the pods: the running version stays.
    let owner = Owner::of(transform, Component::Transform);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let mut program_hash = previous.program_hash.clone();
    if program.condition.status && input_condition.status && topic_condition.status {
        let config = RuntimeConfig { resource: identity.clone(), spec: transform.spec.clone(), kafka: kafka_settings, cassandra: None };
        let config_map = config_map(&owner, &config)?;
        let hash = config_hash(&config_map);
        let env = credential_env(transform.spec.kafka.as_ref(), None, &[]);
        let template = pod_template(PodInputs {
            owner: &owner,
            image: &ctx.config.transformer_image,
            config_hash: &hash,
            env,
            overrides: transform.spec.template.as_ref(),
            restart_policy: None,
        });
        apply(&ctx.client, &config_map).await?;
        apply(&ctx.client, &deployment(&owner, validated.replicas.get(), template)).await?;
        program_hash = program.hash.clone();
    } else if !program.condition.status {
        ctx.event(transform, kube::runtime::events::EventType::Warning, "ProgramInvalid", program.condition.message.clone()).await;
    }
    // Observe.
    let current = deployments.get_opt(&owner.child_name()).await?;
    let (workload, rollout, ready_replicas) = workload_status::deployment(current.as_ref(), validated.replicas.get());
    let group = identity.consumer_group(&validated.input);
    let lag = if kafka_up && input_condition.status {
        admin.consumer_lag(&group, validated.input.topic.as_str()).await.ok()
    } else {
        previous.consumer_lag
    };
    let observed = vec![program.condition, input_condition.clone(), topic_condition.clone(), workload];
    let status = StreamTransformStatus {
        ready_replicas: Some(ready_replicas),
        consumer_lag: lag,
        program_hash,
        ..status_with(transform, &previous, observed, rollout)
    };
    write_status(ctx, transform, &previous, status).await?;
    let key = backoff_key(transform);
    if kafka_up {
        ctx.recovered(&key);
        Ok(Action::requeue(ctx.config.resync()))
    } else {
        ctx.metrics.failed("StreamTransform", "KafkaUnavailable");
        Ok(ctx.backoff(&key))
    }
}

/// Writes `status` when it differs from what the resource has.
async fn write_status(
    ctx: &Context,
    transform: &StreamTransform,
    previous: &StreamTransformStatus,
    status: StreamTransformStatus,
) -> Result<(), Error> {
    if &status != previous {
        patch_status(&ctx.client, transform, &status).await?;
    }
    Ok(())
}

/// The status with `observed` conditions (plus the summary ones) over `previous`.
fn status_with(
    transform: &StreamTransform,
    previous: &StreamTransformStatus,
    observed: Vec<Observed>,
    rollout: Option<String>,
) -> StreamTransformStatus {
    let generation = transform.meta().generation;
    StreamTransformStatus {
        observed_generation: generation,
        conditions: conditions(&previous.conditions, observed, rollout, generation, Timestamp::now()),
        ..previous.clone()
    }
}
