//! Reading a Deployment's status, and its pods' container restarts, into the
//! `WorkloadReady` condition and a rollout message.

use homestream_crds::conditions::WORKLOAD_READY;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};

use crate::status::Observed;

/// What a Deployment's status says: the condition, the rollout still under way (if
/// any) and the ready replicas. `pods` are the Deployment's pods: when the kubelet
/// restarted their containers (out of memory, a failed liveness probe, a crash), the
/// condition's message says how often and why, Ready or not.
pub fn deployment(
    deployment: Option<&Deployment>,
    replicas: u32,
    pods: &[Pod],
) -> (Observed, Option<String>, i32) {
    let Some(deployment) = deployment else {
        return (
            Observed::failed(
                WORKLOAD_READY,
                "Pending",
                "the Deployment is not created yet",
            ),
            Some("creating the Deployment".to_owned()),
            0,
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    let wanted = i32::try_from(replicas).unwrap_or(i32::MAX);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.observed_generation >= deployment.metadata.generation;
    let rollout = (!current || updated < wanted || status.replicas.unwrap_or(0) > wanted)
        .then(|| format!("rolling out: {updated} of {wanted} pods updated, {ready} ready"));
    let mut message = format!("{ready} of {wanted} pods ready");
    if let Some(restarts) = restarts(pods) {
        message.push_str("; ");
        message.push_str(&restarts);
    }
    let condition = if ready >= wanted && current {
        Observed::ok(WORKLOAD_READY, "Available", message)
    } else {
        let reason = if waiting_in_crash_loop(pods) {
            "CrashLoopBackOff"
        } else {
            "PodsNotReady"
        };
        Observed::failed(WORKLOAD_READY, reason, message)
    };
    (condition, rollout, ready)
}

/// "containers restarted N times, last: OOMKilled (exit code 137) at T" over the
/// pods' containers, or `None` when none restarted.
fn restarts(pods: &[Pod]) -> Option<String> {
    let statuses = pods
        .iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten();
    let mut count = 0;
    let mut last: Option<&ContainerStateTerminated> = None;
    for status in statuses {
        count += status.restart_count;
        let terminated = status
            .last_state
            .as_ref()
            .and_then(|state| state.terminated.as_ref());
        if let Some(terminated) = terminated
            && last.is_none_or(|l| l.finished_at < terminated.finished_at)
        {
            last = Some(terminated);
        }
    }
    if count == 0 {
        return None;
    }
    let mut text = format!(
        "containers restarted {count} time{}",
        if count == 1 { "" } else { "s" }
    );
    if let Some(last) = last {
        let reason = last.reason.as_deref().unwrap_or("terminated");
        text.push_str(&format!(", last: {reason} (exit code {})", last.exit_code));
        if let Some(at) = &last.finished_at {
            text.push_str(&format!(" at {}", at.0));
        }
    }
    Some(text)
}

/// Whether a container of the pods waits to be restarted after crashing again.
fn waiting_in_crash_loop(pods: &[Pod]) -> bool {
    pods.iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter_map(|status| status.state.as_ref()?.waiting.as_ref())
        .any(|waiting| waiting.reason.as_deref() == Some("CrashLoopBackOff"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_with(ready: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "d", "generation": 1 },
            "status": { "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                        "readyReplicas": ready }
        }))
        .unwrap()
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "p" }, "status": status })).unwrap()
    }

    fn oom_killed(restarts: i32, finished: &str, state: serde_json::Value) -> Pod {
        pod(json!({ "containerStatuses": [{
            "name": "runtime", "image": "i", "imageID": "", "ready": false,
            "restartCount": restarts, "state": state,
            "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled",
                                           "finishedAt": finished } }
        }] }))
    }

    #[test]
    fn no_restart_says_nothing_more() {
        let (condition, _, _) = deployment(Some(&deployment_with(1)), 1, &[pod(json!({}))]);
        assert!(condition.status);
        assert_eq!(condition.message, "1 of 1 pods ready");
    }

    #[test]
    fn a_restarted_ready_pod_is_available_and_says_why_it_restarted() {
        let pods = [oom_killed(
            2,
            "2026-12-06T10:00:00Z",
            json!({ "running": {} }),
        )];
        let (condition, _, _) = deployment(Some(&deployment_with(1)), 1, &pods);
        assert!(condition.status);
        assert_eq!(condition.reason, "Available");
        assert_eq!(
            condition.message,
            "1 of 1 pods ready; containers restarted 2 times, last: OOMKilled (exit code 137) \
             at 2026-12-06T10:00:00Z"
        );
    }

    #[test]
    fn a_crash_loop_is_the_reason_and_the_newest_termination_is_named() {
        let waiting = json!({ "waiting": { "reason": "CrashLoopBackOff" } });
        let older = oom_killed(1, "2026-12-06T09:00:00Z", waiting.clone());
        let newer = pod(json!({ "containerStatuses": [{
            "name": "runtime", "image": "i", "imageID": "", "ready": false,
            "restartCount": 3, "state": waiting,
            "lastState": { "terminated": { "exitCode": 2, "reason": "Error",
                                           "finishedAt": "2026-12-06T11:00:00Z" } }
        }] }));
        let (condition, _, _) = deployment(Some(&deployment_with(0)), 1, &[older, newer]);
        assert!(!condition.status);
        assert_eq!(condition.reason, "CrashLoopBackOff");
        assert!(
            condition.message.ends_with(
                "containers restarted 4 times, last: Error (exit code 2) at 2026-12-06T11:00:00Z"
            ),
            "{}",
            condition.message
        );
    }
}
