//! The controllers, one per kind, and what they share: the context, the error type,
//! server-side apply of children and status, and backoff for outages.
//!
//! Each reconcile is a pipeline of phases: validate the spec, converge the external
//! systems (Kafka topics, Cassandra schema, Delta tables), build the children (pure, in
//! [`crate::build`]), apply them, observe the workload, and write the status.

pub mod cassandrasink;
mod cleanup;
mod consumer;
mod created;
pub mod deltasink;
mod program;
pub mod scrapejob;
pub mod streamtransform;
#[cfg(test)]
mod tests;
pub mod topics;
mod workload_status;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cassandra::schema::Sessions;
use crate::config::OperatorConfig;
use crate::kafka::credentials::AdminCredentials;
use crate::kafka::{KafkaAdmin, KafkaAdminError, KafkaEndpoint};
use crate::metrics::Metrics;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "homestream-operator";

/// Longest wait between retries of a resource whose Kafka, Cassandra or storage is down.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Failures that abort a reconcile (outages of Kafka, Cassandra or object storage are
/// not among them: they are reported in status and retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or failed a request.
    #[error("kubernetes api request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A child object could not be rendered.
    #[error("rendering the runtime config: {0}")]
    Render(#[from] serde_yaml::Error),
    /// A Kafka client could not be created (bad bootstrap configuration).
    #[error(transparent)]
    Kafka(#[from] KafkaAdminError),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// The category used as the failure metric's label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "KubeApi",
            Self::Render(_) => "Render",
            Self::Kafka(_) => "KafkaClient",
            Self::Finalizer(_) => "Finalizer",
        }
    }
}

/// What every reconcile gets.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Operator-wide settings.
    pub config: OperatorConfig,
    /// Cassandra sessions by contact points.
    pub cassandra: Sessions,
    /// Metrics.
    pub metrics: Metrics,
    /// The topics every watched resource declares.
    pub declarations: topics::Declarations,
    kafka: Mutex<HashMap<KafkaEndpoint, (AdminCredentials, KafkaAdmin)>>,
    failures: Mutex<HashMap<String, u32>>,
    reporter: Reporter,
}

impl Context {
    /// A context for controllers running as `instance` (the pod name).
    pub fn new(
        client: Client,
        config: OperatorConfig,
        metrics: Metrics,
        declarations: topics::Declarations,
        instance: Option<String>,
    ) -> Self {
        Self {
            client,
            config,
            cassandra: Sessions::default(),
            metrics,
            declarations,
            kafka: Mutex::default(),
            failures: Mutex::default(),
            reporter: Reporter {
                controller: FIELD_MANAGER.to_owned(),
                instance,
            },
        }
    }

    /// The admin client for `endpoint`, created on first use and again whenever the
    /// operator's credential files changed (a rotated Secret).
    ///
    /// # Errors
    /// When a credential file cannot be read, the endpoint asks for SASL and the
    /// operator has no login, or librdkafka refuses the configuration.
    pub fn kafka(&self, endpoint: &KafkaEndpoint) -> Result<KafkaAdmin, KafkaAdminError> {
        let credentials = self.config.kafka_security.admin.read()?;
        let mut clients = self.kafka.lock().expect("kafka client cache lock");
        if let Some((read, admin)) = clients.get(endpoint)
            && *read == credentials
        {
            return Ok(admin.clone());
        }
        let admin = KafkaAdmin::new(endpoint, &credentials)?;
        clients.insert(endpoint.clone(), (credentials, admin.clone()));
        Ok(admin)
    }

    /// Requeue after an outage: exponential per resource, 2 s doubling up to a minute.
    pub fn backoff(&self, key: &str) -> Action {
        let mut failures = self.failures.lock().expect("failure counter lock");
        let attempt = failures.entry(key.to_owned()).or_insert(0);
        *attempt = attempt.saturating_add(1);
        let delay = Duration::from_secs(2u64.saturating_pow((*attempt).min(6))).min(MAX_BACKOFF);
        Action::requeue(delay)
    }

    /// Forgets the failures of `key` once it is healthy again.
    pub fn recovered(&self, key: &str) {
        self.failures
            .lock()
            .expect("failure counter lock")
            .remove(key);
    }

    /// The next reconcile of a `kind` resource (backoff `key`) that found a dependency
    /// failing for `outage` (a condition reason), counted; else the periodic resync.
    pub fn requeue(&self, kind: &str, key: &str, outage: Option<&str>) -> Action {
        match outage {
            None => {
                self.recovered(key);
                Action::requeue(self.config.resync())
            }
            Some(reason) => {
                self.metrics.failed(kind, reason);
                self.backoff(key)
            }
        }
    }

    /// [`Self::requeue`], but when nothing is failing no later than `due`: a status
    /// that is only true until then (a ScrapeJob's next scheduled run) is refreshed in
    /// time even if nothing the operator watches changes.
    pub fn requeue_by(
        &self,
        kind: &str,
        key: &str,
        outage: Option<&str>,
        due: Option<Duration>,
    ) -> Action {
        let action = self.requeue(kind, key, outage);
        match (outage, due) {
            (None, Some(due)) => Action::requeue(self.config.resync().min(due)),
            _ => action,
        }
    }

    /// Publishes a Kubernetes Event about `resource`; a failure to publish is only logged.
    pub async fn event<K>(&self, resource: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &resource.object_ref(&())).await {
            tracing::warn!(%error, reason, "Could not publish an event.");
        }
    }
}

/// Server-side applies `object` under the operator's field manager.
///
/// # Errors
/// When the apiserver refuses it.
pub async fn apply<K>(client: &Client, object: &K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    api.patch(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
}

/// Writes `status` to `resource`'s status subresource when it differs from `previous`
/// (server-side apply). Skipping an unchanged status keeps the resource version, so
/// no watcher wakes and no reconcile loops.
///
/// # Errors
/// When the apiserver refuses it.
pub async fn write_status<K, S>(
    client: &Client,
    resource: &K,
    previous: &S,
    status: &S,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if status == previous {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &resource.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &resource.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Reports a spec that does not validate: `type_` (the kind's first condition) and Ready
/// turn False with reason `InvalidSpec` and every problem in the message; nothing else is
/// touched, and the resource waits for the user to change it.
///
/// # Errors
/// When the status cannot be written.
pub async fn report_invalid<K, S>(
    ctx: &Context,
    resource: &K,
    previous: &S,
    type_: &'static str,
    invalid: &homestream_crds::InvalidSpec,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    S: crate::status::KindStatus,
{
    ctx.metrics.failed(&K::kind(&()), "InvalidSpec");
    let generation = resource.meta().generation;
    let observed = vec![crate::status::Observed::failed(
        type_,
        "InvalidSpec",
        invalid.to_string(),
    )];
    let conditions = crate::status::conditions(
        previous.conditions(),
        observed,
        None,
        generation,
        k8s_openapi::jiff::Timestamp::now(),
    );
    write_status(
        &ctx.client,
        resource,
        previous,
        &previous.with_conditions(generation, conditions),
    )
    .await?;
    Ok(Action::await_change())
}

/// The key under which a resource's outage backoff is counted.
pub fn backoff_key<K: Resource<DynamicType = ()>>(resource: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        resource.meta().namespace.as_deref().unwrap_or(""),
        resource.meta().name.as_deref().unwrap_or("")
    )
}

/// `error_policy` shared by the controllers: count and requeue with a pause.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    resource: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(error = %error, kind = %K::kind(&()), name = %resource.meta().name.as_deref().unwrap_or(""), "Reconcile failed.");
    ctx.metrics.failed(&K::kind(&()), error.metric_label());
    ctx.backoff(&backoff_key(resource.as_ref()))
}
