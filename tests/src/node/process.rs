//! Turning a pod's container into a local process (pure): the binary found by image
//! name, the args with mount paths and listen ports rewritten to this machine, the env
//! with values from ConfigMaps and Secrets, and the files of ConfigMap, Secret and
//! projected volumes.
//!
//! The node has no mount namespaces: a volume is a directory of the pod's, and a path
//! under a mount, in the args or in a mounted file (a config file naming a mounted
//! certificate), is rewritten to that directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The environment variable through which the runtime finds its termination message file.
pub const TERMINATION_LOG_ENV: &str = "HOMESTREAM_TERMINATION_LOG";
/// The termination message file's name in the pod directory.
pub const TERMINATION_LOG: &str = "termination-log";

/// Runtime images the node runs, by image name (without registry and tag), and the
/// binary that stands in for each.
#[derive(Clone, Debug, Default)]
pub struct Images(pub BTreeMap<String, PathBuf>);

impl Images {
    /// The binary for `image` (e.g. `ghcr.io/x/homestream-transformer:0.1.0`), if it is ours.
    pub fn binary(&self, image: &str) -> Option<&PathBuf> {
        let without_tag = image.split('@').next().unwrap_or(image);
        let last = without_tag.rsplit('/').next().unwrap_or(without_tag);
        let name = last.split(':').next().unwrap_or(last);
        self.0.get(name)
    }
}

/// ConfigMaps and Secrets the pod references, read by the caller.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// ConfigMap data by name.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret data (decoded) by name.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// How a container's process is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Always (Deployments).
    Always,
    /// After a failure only.
    OnFailure,
    /// Never (Jobs with `Never`).
    Never,
}

/// What the node runs for one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSpec {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment (in addition to `PATH` and `HOME`).
    pub env: Vec<(String, String)>,
    /// Files to write before starting (ConfigMap, Secret and projected volumes).
    pub files: Vec<(PathBuf, String)>,
    /// Directories to create (emptyDir volumes).
    pub dirs: Vec<PathBuf>,
    /// The readiness probe: local port and path.
    pub readiness: Option<(u16, String)>,
    /// Restart policy of the pod.
    pub restart_policy: RestartPolicy,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Builds the process of the pod's first container. `ports` maps each container port to
/// the local port allocated for it; `dir` is the pod's directory on this machine;
/// `scratch` is where its emptyDir volumes go: a short path, because programs put Unix
/// sockets in them (Chromium its `SingletonSocket` in `/tmp`) and a socket's path is
/// limited to 107 bytes.
///
/// # Errors
/// A message like the kubelet's when the image is not a runtime image or a referenced
/// ConfigMap or Secret key is missing.
pub fn process_spec(
    pod: &Pod,
    images: &Images,
    resolved: &Resolved,
    ports: &BTreeMap<i32, u16>,
    dir: &Path,
    scratch: &Path,
) -> Result<ProcessSpec, String> {
    let spec = pod.spec.as_ref().ok_or("pod without spec")?;
    let container: &Container = spec.containers.first().ok_or("pod without containers")?;
    let image = container.image.clone().unwrap_or_default();
    let program = images
        .binary(&image)
        .ok_or_else(|| format!("image {image} is not a homestream runtime image"))?;
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .ok_or_else(|| format!("volume {} is not declared", mount.name))?;
        let local = if volume.empty_dir.is_some() {
            let local = scratch.join(&volume.name);
            dirs.push(local.clone());
            local
        } else {
            let local = dir.join("volumes").join(&volume.name);
            files.extend(volume_files(volume, resolved, &local)?);
            local
        };
        mounts.push((mount.mount_path.clone(), local));
    }
    let rewrite = |arg: &str| -> String {
        for (container_port, local_port) in ports {
            if arg.ends_with(&format!(":{container_port}")) {
                return format!("127.0.0.1:{local_port}");
            }
        }
        for (mount_path, local) in &mounts {
            if let Some(rest) = arg.strip_prefix(mount_path.as_str()) {
                return format!("{}{rest}", local.display());
            }
        }
        arg.to_owned()
    };
    let files = files
        .into_iter()
        .map(|(path, content)| {
            let content = mounts.iter().fold(content, |content, (mount_path, local)| {
                content.replace(&format!("{mount_path}/"), &format!("{}/", local.display()))
            });
            (path, content)
        })
        .collect();
    let mut args: Vec<String> = container
        .command
        .iter()
        .flatten()
        .skip(1)
        .map(|a| rewrite(a))
        .collect();
    args.extend(container.args.iter().flatten().map(|a| rewrite(a)));
    let mut env = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => {
                if let Some(key) = &from.secret_key_ref {
                    lookup(&resolved.secrets, "secret", &key.name, &key.key)?
                } else if let Some(key) = &from.config_map_key_ref {
                    lookup(&resolved.config_maps, "configmap", &key.name, &key.key)?
                } else if let Some(field) = &from.field_ref {
                    downward(pod, &field.field_path)?
                } else {
                    return Err(format!(
                        "env {} has a source the local node does not support",
                        var.name
                    ));
                }
            }
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    // The container's termination message file, read back into the pod's status.
    env.push((
        TERMINATION_LOG_ENV.to_owned(),
        dir.join(TERMINATION_LOG).display().to_string(),
    ));
    if let Some((_, tmp)) = mounts.iter().find(|(path, _)| path == "/tmp") {
        env.push(("TMPDIR".to_owned(), tmp.display().to_string()));
    }
    let readiness = container
        .readiness_probe
        .as_ref()
        .and_then(|probe| probe.http_get.as_ref())
        .and_then(|get| {
            let container_port = match &get.port {
                IntOrString::Int(port) => Some(*port),
                IntOrString::String(name) => container
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))
                    .map(|p| p.container_port),
            }?;
            Some((
                *ports.get(&container_port)?,
                get.path.clone().unwrap_or_else(|| "/".to_owned()),
            ))
        });
    let restart_policy = match spec.restart_policy.as_deref() {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    };
    let grace = Duration::from_secs(
        spec.termination_grace_period_seconds
            .unwrap_or(30)
            .try_into()
            .unwrap_or(30),
    );
    Ok(ProcessSpec {
        program: program.clone(),
        args,
        env,
        files,
        dirs,
        readiness,
        restart_policy,
        grace,
    })
}

/// The files of a ConfigMap, Secret or projected volume mounted at `local`.
fn volume_files(
    volume: &Volume,
    resolved: &Resolved,
    local: &Path,
) -> Result<Vec<(PathBuf, String)>, String> {
    let config_map = |name: &str, items, optional| Projection {
        kind: "configmap",
        objects: &resolved.config_maps,
        name: name.to_owned(),
        items,
        optional,
    };
    let secret = |name: &str, items, optional| Projection {
        kind: "secret",
        objects: &resolved.secrets,
        name: name.to_owned(),
        items,
        optional,
    };
    let projections = if let Some(source) = &volume.config_map {
        vec![config_map(
            &source.name,
            source.items.as_ref(),
            source.optional,
        )]
    } else if let Some(source) = &volume.secret {
        let name = source.secret_name.as_deref().unwrap_or_default();
        vec![secret(name, source.items.as_ref(), source.optional)]
    } else if let Some(projected) = &volume.projected {
        let mut projections = Vec::new();
        for source in projected.sources.iter().flatten() {
            projections.push(match (&source.config_map, &source.secret) {
                (Some(c), None) => config_map(&c.name, c.items.as_ref(), c.optional),
                (None, Some(s)) => secret(&s.name, s.items.as_ref(), s.optional),
                _ => {
                    return Err(format!(
                        "projected volume {} has a source the local node does not support",
                        volume.name
                    ));
                }
            });
        }
        projections
    } else {
        return Err(format!(
            "volume {} has a type the local node does not support",
            volume.name
        ));
    };
    let mut files = Vec::new();
    for projection in projections {
        files.extend(projection.files(local)?);
    }
    Ok(files)
}

/// The keys of one ConfigMap or Secret that a volume projects into files: every key
/// under its own name, or the listed `items` at their paths.
struct Projection<'a> {
    kind: &'static str,
    objects: &'a BTreeMap<String, BTreeMap<String, String>>,
    name: String,
    items: Option<&'a Vec<KeyToPath>>,
    optional: Option<bool>,
}

impl Projection<'_> {
    /// The files under `local`; a missing object or listed key fails unless optional.
    fn files(&self, local: &Path) -> Result<Vec<(PathBuf, String)>, String> {
        let optional = self.optional.unwrap_or(false);
        let Some(data) = self.objects.get(&self.name) else {
            return if optional {
                Ok(Vec::new())
            } else {
                Err(format!("{} {} not found", self.kind, self.name))
            };
        };
        let Some(items) = self.items else {
            return Ok(data
                .iter()
                .map(|(key, value)| (local.join(key), value.clone()))
                .collect());
        };
        let mut files = Vec::new();
        for item in items {
            match data.get(&item.key) {
                Some(value) => files.push((local.join(&item.path), value.clone())),
                None if optional => {}
                None => {
                    return Err(format!(
                        "key {} not found in {} {}",
                        item.key, self.kind, self.name
                    ));
                }
            }
        }
        Ok(files)
    }
}

/// The downward API fields the node supports: name, namespace and labels.
fn downward(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let label = path
        .strip_prefix("metadata.labels['")
        .and_then(|rest| rest.strip_suffix("']"));
    match (path, label) {
        ("metadata.name", _) => Ok(meta.name.clone().unwrap_or_default()),
        ("metadata.namespace", _) => Ok(meta.namespace.clone().unwrap_or_default()),
        (_, Some(label)) => Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(label))
            .cloned()
            .unwrap_or_default()),
        _ => Err(format!(
            "fieldRef {path} is not supported by the local node"
        )),
    }
}

fn lookup(
    sources: &BTreeMap<String, BTreeMap<String, String>>,
    kind: &str,
    name: &str,
    key: &str,
) -> Result<String, String> {
    sources
        .get(name)
        .ok_or_else(|| format!("{kind} {name} not found"))?
        .get(key)
        .cloned()
        .ok_or_else(|| format!("key {key} not found in {kind} {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_runtime_pod_becomes_a_local_process() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p" },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "runtime", "image": "registry.local/homestream-transformer:0.1.0",
                    "args": ["sink", "--config", "/etc/homestream/config.yaml", "--listen", "0.0.0.0:8080"],
                    "ports": [{ "name": "http-metrics", "containerPort": 8080 }],
                    "readinessProbe": { "httpGet": { "path": "/readyz", "port": "http-metrics" } },
                    "env": [
                        { "name": "PLAIN", "value": "1" },
                        { "name": "HOMESTREAM_CASSANDRA_PASSWORD",
                          "valueFrom": { "secretKeyRef": { "name": "db", "key": "password" } } }
                    ],
                    "volumeMounts": [
                        { "name": "config", "mountPath": "/etc/homestream" },
                        { "name": "tmp", "mountPath": "/tmp" }
                    ]
                }],
                "volumes": [
                    { "name": "config", "configMap": { "name": "p-sink" } },
                    { "name": "tmp", "emptyDir": {} }
                ]
            }
        }))
        .unwrap();
        let images = Images(BTreeMap::from([(
            "homestream-transformer".to_owned(),
            PathBuf::from("/bin/rt"),
        )]));
        let resolved = Resolved {
            config_maps: BTreeMap::from([(
                "p-sink".to_owned(),
                BTreeMap::from([("config.yaml".to_owned(), "kind: x".to_owned())]),
            )]),
            secrets: BTreeMap::from([(
                "db".to_owned(),
                BTreeMap::from([("password".to_owned(), "s3cret".to_owned())]),
            )]),
        };
        let spec = process_spec(
            &pod,
            &images,
            &resolved,
            &BTreeMap::from([(8080, 41234)]),
            Path::new("/pods/p"),
            Path::new("/s/p"),
        )
        .unwrap();
        assert_eq!(spec.program, PathBuf::from("/bin/rt"));
        assert_eq!(
            spec.args,
            [
                "sink",
                "--config",
                "/pods/p/volumes/config/config.yaml",
                "--listen",
                "127.0.0.1:41234"
            ]
        );
        assert_eq!(
            spec.files,
            [(
                PathBuf::from("/pods/p/volumes/config/config.yaml"),
                "kind: x".to_owned()
            )]
        );
        assert!(spec.env.contains(&(
            "HOMESTREAM_CASSANDRA_PASSWORD".to_owned(),
            "s3cret".to_owned()
        )));
        assert!(
            spec.env
                .contains(&("TMPDIR".to_owned(), "/s/p/tmp".to_owned()))
        );
        assert_eq!(spec.readiness, Some((41234, "/readyz".to_owned())));
        assert_eq!(spec.restart_policy, RestartPolicy::Never);
    }

    /// A pod with its config in a ConfigMap that names files of a projected volume of
    /// Secret keys, as the operator builds for Kafka TLS.
    fn pod_with_projected_secrets() -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p" },
            "spec": {
                "containers": [{
                    "name": "runtime", "image": "homestream-transformer:1",
                    "args": ["transform", "--config", "/etc/homestream/config.yaml"],
                    "volumeMounts": [
                        { "name": "config", "mountPath": "/etc/homestream" },
                        { "name": "kafka-tls", "mountPath": "/etc/homestream-tls/kafka" }
                    ]
                }],
                "volumes": [
                    { "name": "config", "configMap": { "name": "p-config" } },
                    { "name": "kafka-tls", "projected": { "defaultMode": 256, "sources": [
                        { "secret": { "name": "cluster-ca", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                        { "secret": { "name": "user", "items": [{ "key": "user.key", "path": "tls.key" }] } }
                    ] } }
                ]
            }
        }))
        .unwrap()
    }

    fn resolved_with(secrets: &[(&str, &str, &str)]) -> Resolved {
        let mut resolved = Resolved {
            config_maps: BTreeMap::from([(
                "p-config".to_owned(),
                BTreeMap::from([(
                    "config.yaml".to_owned(),
                    "tls:\n  ca: /etc/homestream-tls/kafka/ca.crt\n  key: /etc/homestream-tls/kafka/tls.key\n".to_owned(),
                )]),
            )]),
            secrets: BTreeMap::new(),
        };
        for (name, key, value) in secrets {
            resolved
                .secrets
                .entry((*name).to_owned())
                .or_default()
                .insert((*key).to_owned(), (*value).to_owned());
        }
        resolved
    }

    fn spec_of(pod: &Pod, resolved: &Resolved) -> Result<ProcessSpec, String> {
        let images = Images(BTreeMap::from([(
            "homestream-transformer".to_owned(),
            PathBuf::from("/bin/rt"),
        )]));
        process_spec(
            pod,
            &images,
            resolved,
            &BTreeMap::new(),
            Path::new("/pods/p"),
            Path::new("/s/p"),
        )
    }

    #[test]
    fn projected_secrets_become_files_that_the_config_points_to() {
        let resolved = resolved_with(&[
            ("cluster-ca", "ca.crt", "CA PEM"),
            ("user", "user.key", "KEY PEM"),
            ("user", "user.crt", "not projected"),
        ]);
        let spec = spec_of(&pod_with_projected_secrets(), &resolved).unwrap();
        assert_eq!(
            spec.files,
            [
                (
                    PathBuf::from("/pods/p/volumes/config/config.yaml"),
                    "tls:\n  ca: /pods/p/volumes/kafka-tls/ca.crt\n  key: /pods/p/volumes/kafka-tls/tls.key\n".to_owned()
                ),
                (
                    PathBuf::from("/pods/p/volumes/kafka-tls/ca.crt"),
                    "CA PEM".to_owned()
                ),
                (
                    PathBuf::from("/pods/p/volumes/kafka-tls/tls.key"),
                    "KEY PEM".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_missing_projected_secret_or_key_is_reported() {
        let pod = pod_with_projected_secrets();
        let no_user = resolved_with(&[("cluster-ca", "ca.crt", "CA PEM")]);
        assert_eq!(
            spec_of(&pod, &no_user).unwrap_err(),
            "secret user not found"
        );
        let no_key = resolved_with(&[("cluster-ca", "ca.crt", "CA PEM"), ("user", "other", "x")]);
        assert_eq!(
            spec_of(&pod, &no_key).unwrap_err(),
            "key user.key not found in secret user"
        );
    }

    #[test]
    fn a_missing_secret_is_reported_like_the_kubelet_does() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [{
                "name": "c", "image": "homestream-scraper:1",
                "env": [{ "name": "K", "valueFrom": { "secretKeyRef": { "name": "api", "key": "key" } } }]
            }] }
        }))
        .unwrap();
        let images = Images(BTreeMap::from([(
            "homestream-scraper".to_owned(),
            PathBuf::from("/bin/rt"),
        )]));
        let error = process_spec(
            &pod,
            &images,
            &Resolved::default(),
            &BTreeMap::new(),
            Path::new("/p"),
            Path::new("/s"),
        )
        .unwrap_err();
        assert_eq!(error, "secret api not found");
    }
}
