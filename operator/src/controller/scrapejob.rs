//! The ScrapeJob controller: output topic converged, then the ConfigMap and the Job
//! (run once) or CronJob (schedule) of the scraper; the runs are read back into status.

use std::sync::Arc;

use homestream_crds::conditions::{TOPIC_READY, WORKLOAD_READY};
use homestream_crds::deletion::DeletionPolicy;
use homestream_crds::runtime::{ResourceIdentity, RuntimeConfig};
use homestream_crds::scrapejob::ValidatedScrapeJob;
use homestream_crds::scrapejob::{RunStatus, TopicStatus};
use homestream_crds::secret::SecretKeyRef;
use homestream_crds::{ScrapeJob, ScrapeJobStatus};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::cleanup::with_cleanup;
use super::{Context, Error, apply, backoff_key, report_invalid, topics, write_status};
use crate::build::labels::{Component, Owner};
use crate::build::pod::{CONFIG_HASH_ANNOTATION, JOB_NAME_LABEL, credential_env};
use crate::build::runtime::{RuntimeChildren, RuntimeInputs, runtime_children};
use crate::build::workload::{ScrapeWorkload, scrape_workload};
use crate::config::KafkaSettings;
use crate::schedule;
use crate::status::{Observed, conditions};

const KIND: &str = "ScrapeJob";

/// Reconciles one ScrapeJob.
///
/// # Errors
/// When the apiserver fails a request.
#[tracing::instrument(skip_all, fields(namespace = %job.namespace().unwrap_or_default(), name = %job.name_any()))]
pub async fn reconcile(job: Arc<ScrapeJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let delete = job.spec.deletion_policy == Some(DeletionPolicy::Delete);
    let context = &*ctx;
    with_cleanup(
        context,
        job,
        delete,
        |job| async move { reconcile_phases(&job, context).await },
        |job| async move { cleanup(&job, context).await },
    )
    .await
}

/// `deletionPolicy: Delete`: deletes the output topic if the operator created it.
async fn cleanup(job: &ScrapeJob, ctx: &Context) -> Result<Action, Error> {
    let admin = ctx.kafka(&ctx.config.resolve_kafka(job.spec.kafka.as_ref()).endpoint())?;
    topics::delete_topics(ctx, &admin, job).await?;
    Ok(Action::await_change())
}

/// Secret keys the scraper needs besides the Kafka credentials: header values.
fn header_secrets(job: &ScrapeJob) -> Vec<&SecretKeyRef> {
    job.spec
        .source
        .http
        .iter()
        .flat_map(|http| http.headers.iter().flatten())
        .filter_map(|header| header.value_from.as_ref().map(|from| &from.secret_key_ref))
        .collect()
}

async fn reconcile_phases(job: &ScrapeJob, ctx: &Context) -> Result<Action, Error> {
    let previous = job.status.clone().unwrap_or_default();
    let generation = job.meta().generation;
    let validated = match job.spec.validate() {
        Ok(validated) => validated,
        Err(invalid) => return report_invalid(ctx, job, &previous, TOPIC_READY, &invalid).await,
    };
    let owner = Owner::of(job, Component::Scrape);
    let kafka = ctx.config.resolve_kafka(job.spec.kafka.as_ref());
    let topics = topics::run(ctx, job, &kafka, &[&validated.output], None).await?;
    let topic_status = match &topics.admin {
        Some(admin) => admin
            .describe(validated.output.name.as_str())
            .await
            .ok()
            .flatten()
            .map(|(partitions, replication)| TopicStatus {
                name: validated.output.name.to_string(),
                partitions: i32::try_from(partitions).ok(),
                replication_factor: i32::try_from(replication).ok(),
            }),
        None => previous.topic.clone(),
    };
    // A CronJob that is not applied this time (topic not ready) still runs on its
    // schedule: its next run stays as reported.
    let mut next_schedule_time = previous.next_schedule_time.clone();
    // When to look again for the status to stay true: only for a next run computed
    // now (a stale one may be past, and would requeue at once, again and again).
    let mut due = None;
    if topics.ready() {
        let children = build(ctx, job, &validated, &owner, &kafka)?;
        let next = apply_children(ctx, &owner, &validated, children).await?;
        due = next.due;
        next_schedule_time = next.time;
    }
    let (workload, rollout, last_run, last_successful_time) = observe_runs(ctx, &owner).await?;
    let kafka_failure = topics.kafka_failure();
    let status = ScrapeJobStatus {
        observed_generation: generation,
        conditions: conditions(
            &previous.conditions,
            vec![topics.output, workload],
            rollout,
            generation,
            Timestamp::now(),
        ),
        topic: topic_status,
        last_run: last_run.or(previous.last_run.clone()),
        last_successful_time: last_successful_time.or(previous.last_successful_time.clone()),
        next_schedule_time,
    };
    write_status(&ctx.client, job, &previous, &status).await?;
    let key = backoff_key(job);
    Ok(ctx.requeue_by(KIND, &key, kafka_failure.as_deref(), due))
}

/// A ScrapeJob's children: its runtime configuration and its run or schedule.
pub struct ScrapeChildren {
    /// The runtime configuration the scraper reads.
    pub config_map: ConfigMap,
    /// Its hash, which tells a run of the current configuration from an outdated one.
    pub config_hash: String,
    /// A Job (run once) or a CronJob (schedule).
    pub workload: ScrapeWorkload,
}

/// Builds the children from the validated spec and the resolved Kafka connection.
///
/// # Errors
/// When the runtime configuration cannot be serialized.
pub fn build(
    ctx: &Context,
    job: &ScrapeJob,
    validated: &ValidatedScrapeJob,
    owner: &Owner,
    kafka: &KafkaSettings,
) -> Result<ScrapeChildren, Error> {
    let config = RuntimeConfig {
        resource: ResourceIdentity {
            kind: KIND.to_owned(),
            namespace: owner.namespace.clone(),
            name: owner.name.clone(),
            generation: job.meta().generation.unwrap_or_default(),
        },
        spec: job.spec.clone(),
        kafka: kafka.runtime(),
        cassandra: None,
        s3: None,
    };
    let RuntimeChildren {
        config_map,
        config_hash,
        template,
    } = runtime_children(RuntimeInputs {
        owner,
        config: &config,
        image: &ctx.config.scraper_image,
        env: credential_env(kafka.sasl.as_ref(), None, &header_secrets(job)),
        kafka_tls: kafka.tls.as_ref(),
        overrides: job.spec.template.as_ref(),
        restart_policy: Some("Never"),
    })?;
    let run_timeout = i64::try_from(validated.run_timeout.as_secs()).unwrap_or(i64::MAX);
    Ok(ScrapeChildren {
        config_map,
        config_hash,
        workload: scrape_workload(owner, &validated.trigger, run_timeout, template),
    })
}

/// The next scheduled run, as applied (none for a run-once trigger).
struct NextRun {
    /// When, for status.
    time: Option<Time>,
    /// How long until just after it, to look again.
    due: Option<std::time::Duration>,
}

/// Applies the ConfigMap, then the run (replacing a Job of an older configuration) or
/// the schedule (removing a Job of a former run-once trigger's, and the other way round).
async fn apply_children(
    ctx: &Context,
    owner: &Owner,
    validated: &ValidatedScrapeJob,
    children: ScrapeChildren,
) -> Result<NextRun, Error> {
    let ScrapeChildren {
        config_map,
        config_hash,
        workload,
    } = children;
    apply(&ctx.client, &config_map).await?;
    match workload {
        ScrapeWorkload::Once(run) => {
            delete_if_present::<CronJob>(ctx, owner).await?;
            if job_to_create(ctx, owner, &config_hash).await? {
                apply(&ctx.client, run.as_ref()).await?;
            }
            Ok(NextRun {
                time: None,
                due: None,
            })
        }
        ScrapeWorkload::Scheduled(cron_job) => {
            let applied = apply(&ctx.client, cron_job.as_ref()).await?;
            let now = Timestamp::now();
            let next = schedule::next_schedule_time(&validated.trigger, &applied, now);
            // A skipped run (concurrencyPolicy Forbid, say) changes nothing the
            // operator watches, and the status would name a time gone by until the
            // next resync.
            Ok(NextRun {
                time: next.map(Time),
                due: next.map(|next| schedule::until_after(next, now)),
            })
        }
    }
}

async fn delete_if_present<K>(ctx: &Context, owner: &Owner) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    if api.get_opt(&owner.child_name()).await?.is_some() {
        api.delete(&owner.child_name(), &DeleteParams::background())
            .await?;
    }
    Ok(())
}

/// Whether the run must be created: there is no Job yet. A Job's pod template is
/// immutable, so the Job of the current configuration is left as it is (applying it
/// again after an operator upgrade changed the image would be refused), and a run-once
/// ScrapeJob whose configuration changed gets a new run: the Job of the old
/// configuration is deleted first. Until it is gone (its pods first) the new one cannot
/// be created, and its disappearance reconciles the ScrapeJob again.
async fn job_to_create(ctx: &Context, owner: &Owner, hash: &str) -> Result<bool, Error> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let Some(existing) = jobs.get_opt(&owner.child_name()).await? else {
        return Ok(true);
    };
    let existing_hash = existing
        .spec
        .as_ref()
        .and_then(|spec| spec.template.metadata.as_ref())
        .and_then(|meta| meta.annotations.as_ref())
        .and_then(|annotations| annotations.get(CONFIG_HASH_ANNOTATION));
    if existing_hash.map(String::as_str) != Some(hash)
        && existing.metadata.deletion_timestamp.is_none()
    {
        jobs.delete(&owner.child_name(), &DeleteParams::foreground())
            .await?;
    }
    Ok(false)
}

/// The newest run (Job) of the ScrapeJob, as `WorkloadReady`, a progress message and
/// the run's status.
async fn observe_runs(
    ctx: &Context,
    owner: &Owner,
) -> Result<(Observed, Option<String>, Option<RunStatus>, Option<Time>), Error> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let mut runs = jobs
        .list(&ListParams::default().labels(&owner.label_selector()))
        .await?
        .items;
    runs.sort_by_key(|run| run.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let last_successful = runs
        .iter()
        .filter_map(|run| run.status.as_ref())
        .filter(|status| status.succeeded.unwrap_or(0) > 0)
        .filter_map(|status| status.completion_time.clone())
        .max_by_key(|time| time.0);
    let Some(latest) = runs.last() else {
        return Ok((
            Observed::ok(WORKLOAD_READY, "Scheduled", "no run yet"),
            None,
            None,
            last_successful,
        ));
    };
    let status = latest.status.clone().unwrap_or_default();
    let succeeded = status.succeeded.unwrap_or(0) > 0;
    let failed = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    let totals = run_totals(ctx, owner, &latest.name_any()).await?;
    let total = |key: &str| {
        totals
            .as_ref()
            .and_then(|t| t.get(key))
            .and_then(serde_json::Value::as_i64)
    };
    let run = RunStatus {
        pages_fetched: total("pagesFetched"),
        records_published: total("recordsPublished"),
        empty_pages: total("emptyPages"),
        items_skipped: total("itemsSkipped"),
        errors: total("errors"),
        name: latest.name_any(),
        start_time: status.start_time.clone(),
        finish_time: status.completion_time.clone().or_else(|| {
            failed
                .then(|| {
                    status
                        .conditions
                        .iter()
                        .flatten()
                        .find(|c| c.type_ == "Failed")
                })
                .flatten()
                .and_then(|c| c.last_transition_time.clone())
        }),
        succeeded: (succeeded || failed).then_some(succeeded),
    };
    let (condition, progress) = if failed {
        (
            Observed::failed(
                WORKLOAD_READY,
                "RunFailed",
                format!("run {} failed: see kubectl logs job/{}", run.name, run.name),
            ),
            None,
        )
    } else if succeeded {
        (
            Observed::ok(
                WORKLOAD_READY,
                "RunSucceeded",
                format!("run {} succeeded", run.name),
            ),
            None,
        )
    } else {
        (
            Observed::ok(
                WORKLOAD_READY,
                "Running",
                format!("run {} is running", run.name),
            ),
            Some(format!("run {} is running", run.name)),
        )
    };
    Ok((condition, progress, Some(run), last_successful))
}

/// The totals a finished run wrote to its termination message (`pagesFetched`,
/// `recordsPublished`, `emptyPages`, `itemsSkipped`, `errors`), from the run's newest
/// terminated pod.
async fn run_totals(
    ctx: &Context,
    owner: &Owner,
    run: &str,
) -> Result<Option<serde_json::Value>, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let selector = format!("{JOB_NAME_LABEL}={run}");
    let pods = pods.list(&ListParams::default().labels(&selector)).await?;
    Ok(pods
        .items
        .iter()
        .filter_map(|pod| {
            pod.status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .state
                .as_ref()?
                .terminated
                .clone()
        })
        .filter_map(|terminated| serde_json::from_str(terminated.message.as_deref()?).ok())
        .next_back())
}
