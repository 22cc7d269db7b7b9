//! The CassandraSink controller: the keyspace and table are converged first (a refused
//! schema change never reaches the pods), then the shared consumer phases.

use std::sync::Arc;

use homestream_crds::cassandrasink::ValidatedCassandraSink;
use homestream_crds::conditions::SCHEMA_READY;
use homestream_crds::deletion::DeletionPolicy;
use homestream_crds::{CassandraSink, CassandraSinkStatus};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::cleanup::with_cleanup;
use super::consumer::{ConsumerSpec, Destination, converge};
use super::{Context, Error, backoff_key, created, report_invalid, topics, write_status};
use crate::build::labels::{Component, Owner};
use crate::cassandra::schema::{self, SchemaOutcome};
use crate::status::{Observed, conditions};

const KIND: &str = "CassandraSink";

/// Reconciles one CassandraSink.
///
/// # Errors
/// When the apiserver fails a request.
#[tracing::instrument(skip_all, fields(namespace = %sink.namespace().unwrap_or_default(), name = %sink.name_any()))]
pub async fn reconcile(sink: Arc<CassandraSink>, ctx: Arc<Context>) -> Result<Action, Error> {
    let delete = sink.spec.deletion_policy == Some(DeletionPolicy::Delete);
    let context = &*ctx;
    with_cleanup(
        context,
        sink,
        delete,
        |sink| async move { reconcile_phases(&sink, context).await },
        |sink| async move { cleanup(&sink, context).await },
    )
    .await
}

/// `deletionPolicy: Delete`: drops the table and deletes the dead-letter topic, each if
/// the operator created it. An
/// outage keeps the finalizer (and the resource) until it succeeds.
async fn cleanup(sink: &CassandraSink, ctx: &Context) -> Result<Action, Error> {
    let tables = created::recorded(sink, created::TABLES);
    if let Ok(validated) = sink.spec.validate()
        && tables.contains(&qualified(&validated))
    {
        let contact_points = ctx
            .config
            .resolve_cassandra(sink.spec.cassandra.as_ref())
            .contact_points;
        let dropped = async {
            schema::drop_table(&*ctx.cassandra.get(&contact_points).await?, &validated).await
        }
        .await;
        if let Err(error) = dropped {
            tracing::warn!(%error, "Could not drop the table; retrying.");
            return Ok(ctx.backoff(&backoff_key(sink)));
        }
    }
    let admin = ctx.kafka(
        &ctx.config
            .resolve_kafka(sink.spec.kafka.as_ref())
            .endpoint(),
    )?;
    topics::delete_topics(ctx, &admin, sink).await?;
    Ok(Action::await_change())
}

/// `keyspace.table`, as recorded.
fn qualified(validated: &ValidatedCassandraSink) -> String {
    format!("{}.{}", validated.keyspace, validated.table)
}

/// `SchemaReady`, whether Cassandra answered, and whether this reconcile created the table.
async fn schema_condition(
    ctx: &Context,
    sink: &CassandraSink,
    validated: &ValidatedCassandraSink,
) -> (Observed, bool, bool) {
    let contact_points = ctx
        .config
        .resolve_cassandra(sink.spec.cassandra.as_ref())
        .contact_points;
    let outcome =
        async { schema::ensure(&*ctx.cassandra.get(&contact_points).await?, validated).await }
            .await;
    match outcome {
        Ok(SchemaOutcome::Ready { action, created }) => (
            Observed::ok(
                SCHEMA_READY,
                "SchemaReady",
                format!("table {} {action}", qualified(validated)),
            ),
            true,
            created,
        ),
        Ok(SchemaOutcome::Refused { reason, message }) => {
            (Observed::failed(SCHEMA_READY, reason, message), true, false)
        }
        Err(error) => (
            Observed::failed(
                SCHEMA_READY,
                "CassandraUnavailable",
                format!(
                    "Cassandra at {} is unreachable: {error}",
                    contact_points.join(",")
                ),
            ),
            false,
            false,
        ),
    }
}

async fn reconcile_phases(sink: &CassandraSink, ctx: &Context) -> Result<Action, Error> {
    let previous = sink.status.clone().unwrap_or_default();
    let generation = sink.meta().generation;
    let validated = match sink.spec.validate() {
        Ok(validated) => validated,
        Err(invalid) => return report_invalid(ctx, sink, &previous, SCHEMA_READY, &invalid).await,
    };
    let (schema, cassandra_up, created_table) = schema_condition(ctx, sink, &validated).await;
    if created_table {
        created::record(ctx, sink, created::TABLES, &[qualified(&validated)]).await?;
    }
    if !schema.status && cassandra_up {
        ctx.event(
            sink,
            EventType::Warning,
            &schema.reason,
            schema.message.clone(),
        )
        .await;
    }
    let owner = Owner::of(sink, Component::Sink);
    let observation = converge(
        ctx,
        ConsumerSpec {
            resource: sink,
            owner: &owner,
            generation: generation.unwrap_or_default(),
            spec: &sink.spec,
            input: &validated.input,
            declared: validated.dead_letter.iter().collect(),
            replicas: validated.replicas.get(),
            kafka: sink.spec.kafka.as_ref(),
            destination: Destination::Cassandra(sink.spec.cassandra.as_ref()),
            template: sink.spec.template.as_ref(),
            gates: vec![schema],
        },
    )
    .await?;
    let status = CassandraSinkStatus {
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
        ..previous.clone()
    };
    write_status(&ctx.client, sink, &previous, &status).await?;
    let key = backoff_key(sink);
    let outage = if cassandra_up {
        observation.kafka_failure.as_deref()
    } else {
        Some("CassandraUnavailable")
    };
    Ok(ctx.requeue(KIND, &key, outage))
}
