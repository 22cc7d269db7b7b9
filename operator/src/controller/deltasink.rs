//! The DeltaSink controller: the Delta table is converged first (created where the
//! policy allows, columns added, a refused change never reaching the pods), then the
//! shared consumer phases; the table's version, last commit, rows and files go to status.

use std::collections::HashMap;
use std::sync::Arc;

use homestream_crds::conditions::TABLE_READY;
use homestream_crds::deletion::DeletionPolicy;
use homestream_crds::deltasink::ValidatedDeltaSink;
use homestream_crds::{DeltaSink, DeltaSinkStatus};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::cleanup::with_cleanup;
use super::consumer::{ConsumerSpec, Destination, converge};
use super::{Context, Error, backoff_key, created, report_invalid, topics, write_status};
use crate::build::labels::{Component, Owner};
use crate::lake::table::{self, StorageError, TableOutcome, TableStats};
use crate::status::{Observed, conditions};

const KIND: &str = "DeltaSink";

/// Reconciles one DeltaSink.
///
/// # Errors
/// When the apiserver fails a request.
#[tracing::instrument(skip_all, fields(namespace = %sink.namespace().unwrap_or_default(), name = %sink.name_any()))]
pub async fn reconcile(sink: Arc<DeltaSink>, ctx: Arc<Context>) -> Result<Action, Error> {
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

/// The storage options the operator opens the sink's table with: the resolved
/// connection and the operator's own key, read now (a rotated Secret counts at once).
fn storage_options(
    ctx: &Context,
    sink: &DeltaSink,
) -> Result<HashMap<String, String>, StorageError> {
    let (s3, _) = ctx.config.resolve_s3(sink.spec.storage.as_ref());
    let key = ctx.config.s3.admin.read()?;
    Ok(table::options(&s3, key.as_ref()))
}

/// `deletionPolicy: Delete`: deletes the table (every object under its location) and
/// the dead-letter topic, each if the operator created it. An outage keeps the
/// finalizer (and the resource) until it succeeds.
async fn cleanup(sink: &DeltaSink, ctx: &Context) -> Result<Action, Error> {
    let tables = created::recorded(sink, created::TABLES);
    if let Ok(validated) = sink.spec.validate()
        && tables.contains(validated.location.as_str())
    {
        let deleted =
            async { table::delete(&validated.location, &storage_options(ctx, sink)?).await }.await;
        match deleted {
            Ok(objects) => tracing::info!(
                location = validated.location.as_str(),
                objects,
                "Deleted the table."
            ),
            Err(error) => {
                tracing::warn!(
                    error = error.message(),
                    "Could not delete the table; retrying."
                );
                return Ok(ctx.backoff(&backoff_key(sink)));
            }
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

/// What the table phase found.
struct TablePhase {
    /// `TableReady`.
    condition: Observed,
    /// Why storage did not answer (the condition's reason), when it did not.
    outage: Option<&'static str>,
    /// Whether this reconcile created the table.
    created: bool,
    /// What the table holds, when it is ready.
    stats: Option<TableStats>,
}

/// `TableReady`, from the table as storage has it.
async fn table_phase(
    ctx: &Context,
    sink: &DeltaSink,
    validated: &ValidatedDeltaSink,
) -> TablePhase {
    let location = validated.location.as_str();
    let outcome = async { table::ensure(validated, &storage_options(ctx, sink)?).await }.await;
    match outcome {
        Ok(TableOutcome::Ready {
            action,
            created,
            stats,
        }) => TablePhase {
            condition: Observed::ok(
                TABLE_READY,
                "TableReady",
                format!("table {location} {action}"),
            ),
            outage: None,
            created,
            stats: Some(stats),
        },
        Ok(TableOutcome::Refused { reason, message }) => TablePhase {
            condition: Observed::failed(TABLE_READY, reason, message),
            outage: None,
            created: false,
            stats: None,
        },
        Err(error) => TablePhase {
            condition: Observed::failed(TABLE_READY, error.reason(), error.message()),
            outage: Some(error.reason()),
            created: false,
            stats: None,
        },
    }
}

async fn reconcile_phases(sink: &DeltaSink, ctx: &Context) -> Result<Action, Error> {
    let previous = sink.status.clone().unwrap_or_default();
    let generation = sink.meta().generation;
    let validated = match sink.spec.validate() {
        Ok(validated) => validated,
        Err(invalid) => return report_invalid(ctx, sink, &previous, TABLE_READY, &invalid).await,
    };
    let table = table_phase(ctx, sink, &validated).await;
    if table.created {
        created::record(
            ctx,
            sink,
            created::TABLES,
            &[validated.location.to_string()],
        )
        .await?;
    }
    if !table.condition.status && table.outage.is_none() {
        ctx.event(
            sink,
            EventType::Warning,
            &table.condition.reason,
            table.condition.message.clone(),
        )
        .await;
    }
    let owner = Owner::of(sink, Component::DeltaSink);
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
            destination: Destination::Lake(sink.spec.storage.as_ref()),
            template: sink.spec.template.as_ref(),
            gates: vec![table.condition],
        },
    )
    .await?;
    // What the table holds is kept from the last reading while storage cannot be read.
    let stats = table.stats.as_ref();
    let status = DeltaSinkStatus {
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
        table_version: stats.map(|s| s.version).or(previous.table_version),
        last_commit_time: match stats {
            Some(stats) => stats.committed.map(|time| time.to_string()),
            None => previous.last_commit_time.clone(),
        },
        rows: match stats {
            Some(stats) => stats.rows,
            None => previous.rows,
        },
        files: stats.map(|s| s.files).or(previous.files),
    };
    write_status(&ctx.client, sink, &previous, &status).await?;
    let key = backoff_key(sink);
    let outage = table.outage.or(observation.kafka_failure.as_deref());
    Ok(ctx.requeue(KIND, &key, outage))
}
