//! Watching the pods bound to the node: each runtime pod gets a supervisor; a deleted
//! pod's process is stopped and the deletion confirmed (as a kubelet does), for every
//! pod on the node, so namespaces can go away.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::Result;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::DeleteParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::process::{Images, Resolved, process_spec};
use super::supervisor::{Supervised, supervise};

/// The node's pod loop.
pub struct PodRunner {
    /// Client to the apiserver.
    pub client: Client,
    /// The node's name.
    pub node: String,
    /// Runtime images and their binaries.
    pub images: Images,
    /// Where pod directories (volumes, logs) go.
    pub work_dir: PathBuf,
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PodRunner {
    /// Runs until the watch ends or `shutdown` resolves; then stops every process it
    /// started (SIGTERM, then SIGKILL after each pod's grace period) before returning, so
    /// no process outlives the node.
    ///
    /// # Errors
    /// When the watch fails for good.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let mut running: HashMap<String, Running> = HashMap::new();
        let outcome = tokio::select! {
            outcome = self.watch(&mut running) => outcome,
            () = shutdown => Ok(()),
        };
        for (_, run) in running.drain() {
            let _ = run.stop.send(true);
            let _ = run.task.await;
        }
        outcome
    }

    async fn watch(&self, running: &mut HashMap<String, Running>) -> Result<()> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.node));
        let mut events = watcher(pods, config)
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(pod) = events.try_next().await? {
            let uid = pod.uid().unwrap_or_default();
            // A pod's entry stays after its process has ended, until the pod is deleted:
            // a late event (a status written before the end, seen after it) must not
            // start it again, as a kubelet never runs a pod twice.
            if pod.metadata.deletion_timestamp.is_some() {
                let stopped = running.remove(&uid);
                tokio::spawn(confirm_deletion(self.client.clone(), pod, stopped));
                continue;
            }
            let terminal = matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
            if running.contains_key(&uid) || terminal {
                continue;
            }
            let image = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone());
            if image
                .as_deref()
                .and_then(|image| self.images.binary(image))
                .is_none()
            {
                continue;
            }
            match self.prepare(&pod).await {
                Ok(supervised) => {
                    tracing::info!(namespace = %pod.namespace().unwrap_or_default(), pod = %pod.name_any(), "Starting pod.");
                    let (stop, stopped) = watch::channel(false);
                    let task = tokio::spawn(supervise(self.client.clone(), supervised, stopped));
                    running.insert(uid, Running { stop, task });
                }
                Err(error) => tracing::warn!(pod = %pod.name_any(), %error, "Cannot run pod yet."),
            }
        }
        Ok(())
    }

    async fn prepare(&self, pod: &Pod) -> Result<Supervised, String> {
        let namespace = pod.namespace().unwrap_or_default();
        let resolved = resolve(&self.client, &namespace, pod)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let mut ports = BTreeMap::new();
        for port in pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
        {
            let local = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?;
            ports.insert(port.container_port, local.port());
        }
        let dir = self.work_dir.join(&namespace).join(pod.name_any());
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let scratch = std::env::temp_dir().join(format!("hs-{}", &uid[..uid.len().min(13)]));
        let spec = process_spec(pod, &self.images, &resolved, &ports, &dir, &scratch)?;
        Ok(Supervised {
            pod: pod.clone(),
            spec,
            log: dir.join("container.log"),
        })
    }
}

/// Reads every ConfigMap and Secret the pod's volumes and first container's env refer to.
async fn resolve(client: &Client, namespace: &str, pod: &Pod) -> Result<Resolved> {
    let mut resolved = Resolved::default();
    let spec = pod.spec.clone().unwrap_or_default();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut config_map_names = Vec::new();
    let mut secret_names = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        config_map_names.extend(volume.config_map.as_ref().map(|c| c.name.clone()));
        secret_names.extend(volume.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            config_map_names.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secret_names.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    for var in spec.containers.iter().flat_map(|c| c.env.iter().flatten()) {
        if let Some(from) = &var.value_from {
            secret_names.extend(from.secret_key_ref.as_ref().map(|k| k.name.clone()));
            config_map_names.extend(from.config_map_key_ref.as_ref().map(|k| k.name.clone()));
        }
    }
    for name in config_map_names {
        if let Some(config_map) = config_maps.get_opt(&name).await? {
            resolved
                .config_maps
                .insert(name, config_map.data.unwrap_or_default());
        }
    }
    for name in secret_names {
        if let Some(secret) = secrets.get_opt(&name).await? {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            resolved.secrets.insert(name, data);
        }
    }
    Ok(resolved)
}

/// Stops the pod's process (if it ran here) and confirms the deletion.
async fn confirm_deletion(client: Client, pod: Pod, running: Option<Running>) {
    if let Some(running) = running {
        let _ = running.stop.send(true);
        let _ = running.task.await;
    }
    let pods: Api<Pod> = Api::namespaced(client, &pod.namespace().unwrap_or_default());
    let confirm = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(error) = pods.delete(&pod.name_any(), &confirm).await {
        tracing::debug!(pod = %pod.name_any(), %error, "Pod already gone.");
    }
}
