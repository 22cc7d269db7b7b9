//! The workloads that run the runtime: a Deployment for the long-running kinds, a Job
//! or CronJob for a ScrapeJob.

use homestream_crds::scrapejob::{ConcurrencyPolicy, Trigger};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ObjectMeta;

use super::labels::Owner;

/// Retries of a failed scrape run before the Job gives up.
const SCRAPE_BACKOFF_LIMIT: i32 = 2;
/// Finished one-off Jobs are kept a day for `kubectl logs`, then garbage collected.
const FINISHED_JOB_TTL_SECONDS: i32 = 86_400;

fn metadata(owner: &Owner) -> ObjectMeta {
    ObjectMeta {
        name: Some(owner.child_name()),
        namespace: Some(owner.namespace.clone()),
        labels: Some(owner.labels()),
        owner_references: Some(vec![owner.reference.clone()]),
        ..ObjectMeta::default()
    }
}

/// A Deployment of `replicas` pods. Consumers in one group: a rolling update starts
/// the new pod before the old one leaves, and the group rebalances.
pub fn deployment(owner: &Owner, replicas: u32, template: PodTemplateSpec) -> Deployment {
    Deployment {
        metadata: metadata(owner),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(owner.selector_labels()),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template,
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The run of a ScrapeJob: a Job (run once) or a CronJob (on a schedule).
#[derive(Clone, Debug, PartialEq)]
pub enum ScrapeWorkload {
    /// One run.
    Once(Box<Job>),
    /// Scheduled runs.
    Scheduled(Box<CronJob>),
}

/// The Job or CronJob for a ScrapeJob's trigger; `run_timeout` bounds each run.
pub fn scrape_workload(
    owner: &Owner,
    trigger: &Trigger,
    run_timeout_seconds: i64,
    template: PodTemplateSpec,
) -> ScrapeWorkload {
    let job_spec = |suspend: Option<bool>| JobSpec {
        backoff_limit: Some(SCRAPE_BACKOFF_LIMIT),
        active_deadline_seconds: Some(run_timeout_seconds),
        suspend,
        template: template.clone(),
        ..JobSpec::default()
    };
    match trigger {
        Trigger::Once { suspend } => ScrapeWorkload::Once(Box::new(Job {
            metadata: metadata(owner),
            spec: Some(JobSpec {
                ttl_seconds_after_finished: Some(FINISHED_JOB_TTL_SECONDS),
                ..job_spec(Some(*suspend))
            }),
            ..Job::default()
        })),
        Trigger::Scheduled {
            schedule,
            time_zone,
            suspend,
            concurrency_policy,
            successful_jobs_history_limit,
            failed_jobs_history_limit,
            starting_deadline_seconds,
            parsed: _,
        } => ScrapeWorkload::Scheduled(Box::new(CronJob {
            metadata: metadata(owner),
            spec: CronJobSpec {
                schedule: schedule.to_string(),
                time_zone: time_zone.as_ref().map(ToString::to_string),
                suspend: Some(*suspend),
                concurrency_policy: Some(cron_concurrency_policy(*concurrency_policy).to_owned()),
                successful_jobs_history_limit: Some(history_limit(*successful_jobs_history_limit)),
                failed_jobs_history_limit: Some(history_limit(*failed_jobs_history_limit)),
                starting_deadline_seconds: *starting_deadline_seconds,
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(owner.labels()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(job_spec(None)),
                },
            },
            ..CronJob::default()
        })),
    }
}

fn history_limit(limit: u32) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

fn cron_concurrency_policy(policy: ConcurrencyPolicy) -> &'static str {
    match policy {
        ConcurrencyPolicy::Allow => "Allow",
        ConcurrencyPolicy::Forbid => "Forbid",
        ConcurrencyPolicy::Replace => "Replace",
    }
}

#[cfg(test)]
mod tests {
    use homestream_crds::format::cron::CronSchedule;
    use homestream_crds::scrapejob::ConcurrencyPolicy;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use serde_json::json;

    use super::*;
    use crate::build::labels::Component;

    fn owner(component: Component) -> Owner {
        Owner {
            namespace: "listings".to_owned(),
            name: "zoopla".to_owned(),
            reference: OwnerReference {
                api_version: "homestream.io/v1alpha1".to_owned(),
                kind: "ScrapeJob".to_owned(),
                name: "zoopla".to_owned(),
                uid: "uid-1".to_owned(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            component,
        }
    }

    fn template() -> PodTemplateSpec {
        PodTemplateSpec::default()
    }

    #[test]
    fn a_deployment_selects_its_pods_and_is_owned() {
        let built =
            serde_json::to_value(deployment(&owner(Component::Transform), 3, template())).unwrap();
        let expected = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "zoopla-transform", "namespace": "listings",
                "labels": {
                    "app.kubernetes.io/component": "transform", "app.kubernetes.io/instance": "zoopla",
                    "app.kubernetes.io/managed-by": "homestream-operator", "app.kubernetes.io/name": "homestream"
                },
                "ownerReferences": [{
                    "apiVersion": "homestream.io/v1alpha1", "kind": "ScrapeJob", "name": "zoopla",
                    "uid": "uid-1", "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": {
                "replicas": 3,
                "selector": { "matchLabels": {
                    "app.kubernetes.io/component": "transform", "app.kubernetes.io/instance": "zoopla",
                    "app.kubernetes.io/name": "homestream"
                } },
                "strategy": { "type": "RollingUpdate" },
                "template": {}
            }
        });
        assert_eq!(built, expected);
    }

    #[test]
    fn run_once_is_a_job_with_a_deadline_and_a_ttl() {
        let ScrapeWorkload::Once(job) = scrape_workload(
            &owner(Component::Scrape),
            &Trigger::Once { suspend: false },
            600,
            template(),
        ) else {
            panic!("expected a Job");
        };
        let spec = serde_json::to_value(job.spec).unwrap();
        assert_eq!(
            spec,
            json!({
                "activeDeadlineSeconds": 600, "backoffLimit": 2, "suspend": false,
                "ttlSecondsAfterFinished": 86400, "template": {}
            })
        );
        assert_eq!(job.metadata.name.as_deref(), Some("zoopla"));
    }

    #[test]
    fn a_schedule_is_a_cronjob_with_its_policy_and_limits() {
        let schedule = CronSchedule::from("0 */6 * * *");
        let trigger = Trigger::Scheduled {
            parsed: schedule.parse().unwrap(),
            schedule,
            time_zone: Some(homestream_crds::format::cron::TimeZone::from(
                "Europe/London",
            )),
            suspend: true,
            concurrency_policy: ConcurrencyPolicy::Replace,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 1,
            starting_deadline_seconds: Some(120),
        };
        let ScrapeWorkload::Scheduled(cron_job) =
            scrape_workload(&owner(Component::Scrape), &trigger, 900, template())
        else {
            panic!("expected a CronJob");
        };
        let mut spec = serde_json::to_value(&cron_job.spec).unwrap();
        spec["jobTemplate"]["metadata"] = json!(null);
        assert_eq!(
            spec,
            json!({
                "schedule": "0 */6 * * *", "timeZone": "Europe/London", "suspend": true,
                "concurrencyPolicy": "Replace", "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                "startingDeadlineSeconds": 120,
                "jobTemplate": {
                    "metadata": null,
                    "spec": { "activeDeadlineSeconds": 900, "backoffLimit": 2, "template": {} }
                }
            })
        );
    }
}
