//! Argo CD's view of homestream resources: the health checks of
//! `manifests/argocd/argocd-cm-health.patch.yaml`, run the way Argo CD runs a health
//! script (the resource as the Lua global `obj`, the script returning a table with
//! `status` and `message`) in Lua 5.1, the dialect of Argo CD's gopher-lua.

use anyhow::{Context, Result, ensure};
use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::Value;

use crate::crds::repo_path;

/// The argocd-cm patch that holds the health checks.
pub const HEALTH_PATCH: &str = "manifests/argocd/argocd-cm-health.patch.yaml";

/// The statuses a health script may return (Argo CD's `HealthStatusCode`s).
const STATUSES: [&str; 5] = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing"];

/// What a health check says of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `Healthy`, `Progressing`, `Degraded`, `Suspended` or `Missing`.
    pub status: String,
    /// Why.
    pub message: String,
}

/// The health of `object` (a homestream resource as the apiserver returns it, with
/// `kind`) by the committed Argo CD health check of its kind.
///
/// # Errors
/// When the patch has no check for the kind, the script fails, or it returns a status
/// Argo CD does not know.
pub fn health(object: &Value) -> Result<Health> {
    let kind = object["kind"].as_str().context("the object has no kind")?;
    let patch: Value = serde_yaml::from_str(&std::fs::read_to_string(repo_path(HEALTH_PATCH))?)?;
    let key = format!("resource.customizations.health.homestream.io_{kind}");
    let script = patch["data"][&key]
        .as_str()
        .with_context(|| format!("{HEALTH_PATCH} has no {key}"))?;
    let lua = Lua::new();
    // Kubernetes omits unset fields; Argo CD's objects have no nulls, so none become
    // Lua values here either.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    lua.globals()
        .set("obj", lua.to_value_with(object, options)?)?;
    let returned: Table = lua
        .load(script)
        .set_name(key.as_str())
        .eval()
        .with_context(|| format!("running {key}"))?;
    let field = |name: &str| -> Result<String> {
        Ok(returned
            .get::<Option<String>>(name)
            .with_context(|| format!("{key} returned a bad {name}"))?
            .unwrap_or_default())
    };
    let health = Health {
        status: field("status")?,
        message: field("message")?,
    };
    ensure!(
        STATUSES.contains(&health.status.as_str()),
        "{key} returned a status Argo CD does not know: {health:?}"
    );
    Ok(health)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A ScrapeJob at `generation` whose status describes `observed`, with `Ready` and
    /// `Degraded` as the operator derives them.
    fn scrape_job(generation: i64, observed: Option<i64>, ready: bool, degraded: bool) -> Value {
        let condition = |type_: &str, status: bool, reason: &str, message: &str| {
            json!({ "type": type_, "status": if status { "True" } else { "False" },
                    "reason": reason, "message": message })
        };
        json!({
            "apiVersion": "homestream.io/v1alpha1", "kind": "ScrapeJob",
            "metadata": { "name": "rest", "generation": generation },
            "spec": { "schedule": "@hourly" },
            "status": {
                "observedGeneration": observed,
                "conditions": [
                    condition("Ready", ready, if ready { "Ready" } else { "Progressing" }, "run rest-1 is running"),
                    condition("Degraded", degraded, "KafkaUnavailable", "TopicReady: no broker answered"),
                ],
            },
        })
    }

    fn status_of(object: &Value) -> (String, String) {
        let health = health(object).unwrap();
        (health.status, health.message)
    }

    #[test]
    fn no_status_or_an_unobserved_generation_is_progressing() {
        let mut fresh = scrape_job(1, None, false, false);
        fresh.as_object_mut().unwrap().remove("status");
        assert_eq!(status_of(&fresh).0, "Progressing");
        assert_eq!(
            status_of(&scrape_job(3, Some(2), true, false)),
            (
                "Progressing".to_owned(),
                "waiting for the homestream operator to observe generation 3".to_owned()
            )
        );
    }

    #[test]
    fn conditions_decide_once_the_generation_is_observed() {
        assert_eq!(status_of(&scrape_job(2, Some(2), true, false)).0, "Healthy");
        assert_eq!(
            status_of(&scrape_job(2, Some(2), false, false)),
            (
                "Progressing".to_owned(),
                "Progressing: run rest-1 is running".to_owned()
            )
        );
        assert_eq!(
            status_of(&scrape_job(2, Some(2), false, true)),
            (
                "Degraded".to_owned(),
                "KafkaUnavailable: TopicReady: no broker answered".to_owned()
            )
        );
    }

    #[test]
    fn a_suspended_scrape_job_is_suspended_unless_degraded() {
        let mut suspended = scrape_job(2, Some(2), true, false);
        suspended["spec"]["suspend"] = json!(true);
        assert_eq!(status_of(&suspended).0, "Suspended");
        suspended["status"]["conditions"][1]["status"] = json!("True");
        assert_eq!(status_of(&suspended).0, "Degraded");
    }

    #[test]
    fn every_kind_has_the_same_check() {
        let mut object = scrape_job(1, Some(1), true, false);
        for kind in ["StreamTransform", "CassandraSink", "DeltaSink"] {
            object["kind"] = json!(kind);
            assert_eq!(status_of(&object).0, "Healthy", "{kind}");
        }
        object["kind"] = json!("Deployment");
        assert!(health(&object).is_err());
    }
}
