//! Running the real operator binary against the local stack, watching one namespace,
//! and reading the conditions it reports.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use homestream_tests::{StackEnv, local_cluster};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::process::Child;

/// How long the operator may take to converge in tests.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The operator binary running for one namespace; killed when dropped.
pub struct Operator {
    child: Child,
    /// Its metrics address.
    pub metrics: String,
}

impl Operator {
    /// Starts `homestream-operator` watching `namespace`, with the stack's S3 as its
    /// default and a 2 s resync so tests see drift and recovery quickly.
    pub fn start(env: &StackEnv, namespace: &str) -> Result<Self> {
        Self::start_with(env, namespace, &[], "homestream-operator-test", None)
    }

    /// Starts the operator with extra arguments, as replica `instance`, with another
    /// kubeconfig than the stack's admin one when given.
    pub fn start_with(
        env: &StackEnv,
        namespace: &str,
        args: &[&str],
        instance: &str,
        kubeconfig: Option<&Path>,
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let metrics = format!("127.0.0.1:{port}");
        let binary = Path::new(env!("CARGO_BIN_EXE_homestream-operator"));
        let child = local_cluster::operator_command(env, binary, namespace, &metrics)
            .envs(env.lake.operator_env()?)
            .args(args)
            .env("POD_NAME", instance)
            .env("KUBECONFIG", kubeconfig.unwrap_or(&env.kubeconfig))
            .env("RUST_LOG", "info,homestream_operator=debug")
            .spawn()
            .context("starting homestream-operator")?;
        Ok(Self { child, metrics })
    }

    /// Peak resident memory of the operator process so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Kills the operator with SIGKILL (no chance to release anything) and reaps it.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("killing the operator")
    }
}

/// The operator's `/metrics` page.
pub async fn metrics(operator: &Operator) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&operator.metrics).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: operator\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// Server-side applies `object` as a user would (field manager `kubectl`).
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let name = object
        .meta()
        .name
        .clone()
        .context("object without a name")?;
    Ok(api
        .patch(
            &name,
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(object),
        )
        .await?)
}

/// The condition `type_` of an object's status, read through its JSON.
pub fn condition<K: Serialize>(object: &K, type_: &str) -> Option<Condition> {
    let value = serde_json::to_value(object).ok()?;
    let conditions: Vec<Condition> =
        serde_json::from_value(value["status"]["conditions"].clone()).ok()?;
    conditions.into_iter().find(|c| c.type_ == type_)
}

/// Waits until the condition `type_` of `name` has `status` and `reason`; returns it.
pub async fn wait_condition<K>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> Result<Condition>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    homestream_tests::wait::until(
        &format!("{name} {type_}={status} ({reason})"),
        CONVERGE,
        || async {
            let object = api.get(name).await?;
            Ok(match condition(&object, type_) {
                Some(c) if c.status == status && c.reason == reason => Ok(c),
                Some(c) => Err(format!(
                    "{}={} ({}): {}",
                    c.type_, c.status, c.reason, c.message
                )),
                None => Err(format!("no {type_} condition yet")),
            })
        },
    )
    .await
}

/// Deletes `name` and waits until it is gone (its finalizer, if any, has run).
pub async fn delete_and_wait<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    api.delete(name, &Default::default()).await?;
    homestream_tests::wait::until(&format!("{name} to be gone"), CONVERGE, || async {
        Ok(api
            .get_opt(name)
            .await?
            .map_or(Ok(()), |_| Err("still there".to_owned())))
    })
    .await
}

/// A client for the stack.
pub async fn client(env: &StackEnv) -> Result<Client> {
    let client = homestream_tests::kubernetes::client(env).await?;
    homestream_tests::crds::install(&client).await?;
    Ok(client)
}

/// A ScrapeJob `rest` reading a JSON API into `output` (with `partitions`), run once or
/// on `schedule` in Europe/London.
pub fn rest_scrape_job(
    output: &str,
    partitions: i32,
    schedule: Option<&str>,
) -> Result<homestream_crds::ScrapeJob> {
    let mut spec = serde_json::json!({
        "source": { "http": { "url": "https://api.example.com/listings" } },
        "extract": {
            "items": { "json": { "path": "$.results[*]" } },
            "fields": [ { "name": "id", "jsonPath": "$.id" } ],
            "key": "id"
        },
        "output": { "topic": { "name": output, "partitions": partitions } }
    });
    if let Some(schedule) = schedule {
        spec["schedule"] = serde_json::json!(schedule);
        spec["timeZone"] = serde_json::json!("Europe/London");
    }
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "ScrapeJob",
        "metadata": { "name": "rest" }, "spec": spec
    }))?)
}
