//! The StreamTransform controller: the program is compiled first (an invalid one never
//! reaches the pods: the running version stays), then the shared consumer phases.

use std::sync::Arc;

use homestream_crds::conditions::TOPIC_READY;
use homestream_crds::deletion::DeletionPolicy;
use homestream_crds::{StreamTransform, StreamTransformStatus};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::cleanup::with_cleanup;
use super::consumer::{ConsumerSpec, Destination, converge};
use super::{Context, Error, backoff_key, program, report_invalid, topics, write_status};
use crate::build::labels::{Component, Owner};
use crate::status::conditions;

const KIND: &str = "StreamTransform";

/// Reconciles one StreamTransform.
///
/// # Errors
/// When the apiserver fails a request.
#[tracing::instrument(skip_all, fields(namespace = %transform.namespace().unwrap_or_default(), name = %transform.name_any()))]
pub async fn reconcile(
    transform: Arc<StreamTransform>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let delete = transform.spec.deletion_policy == Some(DeletionPolicy::Delete);
    let context = &*ctx;
    with_cleanup(
        context,
        transform,
        delete,
        |transform| async move { reconcile_phases(&transform, context).await },
        |transform| async move { cleanup(&transform, context).await },
    )
    .await
}

/// `deletionPolicy: Delete`: deletes the output and dead-letter topics the operator
/// created for it.
async fn cleanup(transform: &StreamTransform, ctx: &Context) -> Result<Action, Error> {
    let admin = ctx.kafka(
        &ctx.config
            .resolve_kafka(transform.spec.kafka.as_ref())
            .endpoint(),
    )?;
    topics::delete_topics(ctx, &admin, transform).await?;
    Ok(Action::await_change())
}

async fn reconcile_phases(transform: &StreamTransform, ctx: &Context) -> Result<Action, Error> {
    let previous = transform.status.clone().unwrap_or_default();
    let generation = transform.meta().generation;
    let validated = match transform.spec.validate() {
        Ok(validated) => validated,
        Err(invalid) => {
            return report_invalid(ctx, transform, &previous, TOPIC_READY, &invalid).await;
        }
    };
    let program = program::check(&validated.program);
    if !program.condition.status {
        ctx.metrics.failed(KIND, "ProgramInvalid");
        ctx.event(
            transform,
            EventType::Warning,
            "ProgramInvalid",
            program.condition.message.clone(),
        )
        .await;
    }
    let owner = Owner::of(transform, Component::Transform);
    let mut declared = vec![&validated.output];
    declared.extend(validated.dead_letter.as_ref());
    let observation = converge(
        ctx,
        ConsumerSpec {
            resource: transform,
            owner: &owner,
            generation: generation.unwrap_or_default(),
            spec: &transform.spec,
            input: &validated.input,
            declared,
            replicas: validated.replicas.get(),
            kafka: transform.spec.kafka.as_ref(),
            destination: Destination::Topics,
            template: transform.spec.template.as_ref(),
            gates: vec![program.condition],
        },
    )
    .await?;
    let status = StreamTransformStatus {
        observed_generation: generation,
        conditions: conditions(
            &previous.conditions,
            observation.conditions,
            observation.rollout,
            generation,
            Timestamp::now(),
        ),
        ready_replicas: Some(observation.ready_replicas),
        consumer_lag: observation.lag.or(previous.consumer_lag),
        program_hash: if observation.applied {
            program.hash
        } else {
            previous.program_hash.clone()
        },
        ..previous.clone()
    };
    write_status(&ctx.client, transform, &previous, &status).await?;
    let key = backoff_key(transform);
    Ok(ctx.requeue(KIND, &key, observation.kafka_failure.as_deref()))
}
