//! The pod template every runtime workload shares: one `runtime` container running a
//! subcommand of `homestream-runtime`, its configuration mounted read-only, credentials
//! from Secrets, probes on the runtime's endpoints and locked-down security defaults.

use std::collections::BTreeMap;

use homestream_crds::connection::{CassandraConnection, Credentials, S3Credentials, Sasl, Tls};
use homestream_crds::runtime::{
    CASSANDRA_PASSWORD_ENV, CASSANDRA_USERNAME_ENV, CONFIG_DIR, CONFIG_KEY, KAFKA_PASSWORD_ENV,
    KAFKA_TLS_DIR, KAFKA_USERNAME_ENV, S3_ACCESS_KEY_ID_ENV, S3_SECRET_ACCESS_KEY_ENV,
    secret_env_var, tls_secret_files,
};
use homestream_crds::secret::SecretKeyRef;
use homestream_crds::workload::PodTemplate;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretProjection, SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::labels::{Component, Owner};

/// The annotation that carries the configuration hash on the pod template.
pub const CONFIG_HASH_ANNOTATION: &str = "homestream.io/config-hash";
/// The port of the runtime's `/metrics`, `/healthz` and `/readyz`.
pub const RUNTIME_PORT: u16 = 8080;
/// The label the Job controller puts on a Job's pods, naming the Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The user the runtime runs as: not root, and not a user that exists in the image.
const RUNTIME_UID: i64 = 65532;

/// What differs between the pods of the three kinds.
#[derive(Clone, Debug)]
pub struct PodInputs<'a> {
    /// The resource the pods run for.
    pub owner: &'a Owner,
    /// The runtime image.
    pub image: &'a str,
    /// Hash of the ConfigMap the pods read.
    pub config_hash: &'a str,
    /// Environment variables (credentials from Secrets).
    pub env: Vec<EnvVar>,
    /// The Kafka TLS Secrets (the resource's, else the operator-wide default), mounted
    /// under [`KAFKA_TLS_DIR`].
    pub kafka_tls: Option<&'a Tls>,
    /// The resource's overrides.
    pub overrides: Option<&'a PodTemplate>,
    /// `Never` or `OnFailure` for Job pods; `None` for Deployments (always restart).
    pub restart_policy: Option<&'static str>,
}

/// The pod template.
pub fn pod_template(inputs: PodInputs<'_>) -> PodTemplateSpec {
    let owner = inputs.owner;
    let overrides = inputs.overrides.cloned().unwrap_or_default();
    let mut labels = overrides.labels.unwrap_or_default();
    labels.extend(owner.labels());
    let mut annotations = overrides.annotations.unwrap_or_default();
    annotations.insert(
        CONFIG_HASH_ANNOTATION.to_owned(),
        inputs.config_hash.to_owned(),
    );
    let config_path = format!("{CONFIG_DIR}/{CONFIG_KEY}");
    let mut env = inputs.env;
    // The pod's name keeps a transformer's transactional id unique per replica.
    env.push(downward_env("POD_NAME", "metadata.name"));
    if owner.component == Component::Scrape {
        // The run's name in records' `_meta.run`: the Job's name, through the downward API.
        env.push(downward_env(
            "HOMESTREAM_RUN_NAME",
            &format!("metadata.labels['{JOB_NAME_LABEL}']"),
        ));
    }
    let mut volumes = vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: owner.child_name(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        // The root filesystem is read-only; Chromium's profile and crash files
        // need somewhere to go.
        Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("256Mi".to_owned())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let mut volume_mounts = vec![
        VolumeMount {
            name: "config".to_owned(),
            mount_path: CONFIG_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        },
    ];
    if let Some(tls) = inputs.kafka_tls {
        volumes.push(tls_volume("kafka-tls", tls));
        volume_mounts.push(VolumeMount {
            name: "kafka-tls".to_owned(),
            mount_path: KAFKA_TLS_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "runtime".to_owned(),
                image: Some(inputs.image.to_owned()),
                args: Some(vec![
                    owner.component.subcommand().to_owned(),
                    "--config".to_owned(),
                    config_path,
                    "--listen".to_owned(),
                    format!("0.0.0.0:{RUNTIME_PORT}"),
                ]),
                env: (!env.is_empty()).then_some(env),
                ports: Some(vec![ContainerPort {
                    name: Some("http-metrics".to_owned()),
                    container_port: RUNTIME_PORT.into(),
                    protocol: Some("TCP".to_owned()),
                    ..ContainerPort::default()
                }]),
                liveness_probe: Some(http_probe("/healthz", 10)),
                readiness_probe: Some(http_probe("/readyz", 5)),
                resources: Some(overrides.resources.unwrap_or_else(default_resources)),
                security_context: Some(container_security()),
                volume_mounts: Some(volume_mounts),
                ..Container::default()
            }],
            volumes: Some(volumes),
            restart_policy: inputs.restart_policy.map(str::to_owned),
            // The runtime never talks to the apiserver: no token in the pod.
            automount_service_account_token: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUNTIME_UID),
                run_as_group: Some(RUNTIME_UID),
                fs_group: Some(RUNTIME_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            node_selector: overrides.node_selector,
            tolerations: overrides.tolerations,
            affinity: overrides.affinity,
            priority_class_name: overrides.priority_class_name,
            termination_grace_period_seconds: Some(30),
            ..PodSpec::default()
        }),
    }
}

fn downward_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http-metrics".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// A volume of the Secret keys a TLS setting names, each as the file the runtime
/// configuration points to, readable by the runtime user only.
fn tls_volume(name: &str, tls: &Tls) -> Volume {
    let sources = tls_secret_files(tls)
        .map(|(secret, file_name)| VolumeProjection {
            secret: Some(SecretProjection {
                name: secret.name.clone(),
                items: Some(vec![KeyToPath {
                    key: secret.key.clone(),
                    path: file_name.to_owned(),
                    mode: None,
                }]),
                optional: Some(false),
            }),
            ..VolumeProjection::default()
        })
        .collect();
    Volume {
        name: name.to_owned(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            default_mode: Some(0o400),
        }),
        ..Volume::default()
    }
}

/// Requests that fit a small pod; limits only on memory, so a leak is contained but a
/// busy pod may still burst on CPU.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".to_owned())),
            ("memory".to_owned(), Quantity("128Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("512Mi".to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// Environment variables that bring credentials from Secrets into the pod: the Kafka
/// SASL login (the resource's, else the operator-wide default), the Cassandra
/// credentials of the resource, and any other Secret keys it references (e.g. an API
/// key header), each under the name the runtime looks up.
pub fn credential_env(
    kafka_sasl: Option<&Sasl>,
    cassandra: Option<&CassandraConnection>,
    other_secrets: &[&SecretKeyRef],
) -> Vec<EnvVar> {
    let mut env = Vec::new();
    if let Some(credentials) = kafka_sasl.map(|s| &s.credentials) {
        push_credentials(
            &mut env,
            credentials,
            KAFKA_USERNAME_ENV,
            KAFKA_PASSWORD_ENV,
        );
    }
    if let Some(credentials) = cassandra.and_then(|c| c.credentials.as_ref()) {
        push_credentials(
            &mut env,
            credentials,
            CASSANDRA_USERNAME_ENV,
            CASSANDRA_PASSWORD_ENV,
        );
    }
    for secret in other_secrets {
        let name = secret_env_var(secret);
        if !env.iter().any(|e: &EnvVar| e.name == name) {
            env.push(secret_env(name, secret));
        }
    }
    env
}

/// The environment variables that bring a DeltaSink's S3 access key from its Secret
/// into the pod, under the names the runtime looks up.
pub fn s3_credential_env(credentials: &S3Credentials) -> [EnvVar; 2] {
    [
        secret_env(S3_ACCESS_KEY_ID_ENV.to_owned(), &credentials.access_key_id),
        secret_env(
            S3_SECRET_ACCESS_KEY_ENV.to_owned(),
            &credentials.secret_access_key,
        ),
    ]
}

fn push_credentials(env: &mut Vec<EnvVar>, credentials: &Credentials, user: &str, password: &str) {
    env.push(secret_env(user.to_owned(), &credentials.username));
    env.push(secret_env(password.to_owned(), &credentials.password));
}

fn secret_env(name: String, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

#[cfg(test)]
mod tests {
    use homestream_crds::connection::{Credentials, Sasl, SaslMechanism};
    use homestream_crds::runtime::TlsFiles;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use serde_json::json;

    use super::*;
    use crate::build::labels::Component;

    fn owner() -> Owner {
        Owner {
            namespace: "listings".to_owned(),
            name: "rm".to_owned(),
            reference: OwnerReference::default(),
            component: Component::Scrape,
        }
    }

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    #[test]
    fn pods_are_locked_down_and_carry_the_config_hash() {
        let owner = owner();
        let template = pod_template(PodInputs {
            owner: &owner,
            image: "homestream-scraper:0.1.0",
            config_hash: "abc123",
            env: vec![],
            kafka_tls: None,
            overrides: None,
            restart_policy: Some("Never"),
        });
        let value = serde_json::to_value(&template).unwrap();
        assert_eq!(
            value["metadata"]["annotations"][CONFIG_HASH_ANNOTATION],
            "abc123"
        );
        let spec = &value["spec"];
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(
            spec["securityContext"],
            json!({ "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                    "seccompProfile": { "type": "RuntimeDefault" } })
        );
        let container = &spec["containers"][0];
        assert_eq!(
            container["securityContext"],
            json!({ "runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                    "privileged": false, "capabilities": { "drop": ["ALL"] },
                    "seccompProfile": { "type": "RuntimeDefault" } })
        );
        assert_eq!(
            container["args"],
            json!([
                "scrape",
                "--config",
                "/etc/homestream/config.yaml",
                "--listen",
                "0.0.0.0:8080"
            ])
        );
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(container["env"][0]["name"], "POD_NAME");
        assert_eq!(container["env"][1]["name"], "HOMESTREAM_RUN_NAME");
        assert_eq!(
            container["env"][1]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['batch.kubernetes.io/job-name']"
        );
        assert_eq!(spec["volumes"][0]["configMap"]["name"], "rm");
        assert_eq!(
            spec["volumes"].as_array().unwrap().len(),
            2,
            "no TLS volume"
        );
    }

    /// The transformer pod template of `owner` with `env` and the Kafka TLS Secrets
    /// `tls`, as JSON.
    fn transformer_pod(owner: &Owner, env: Vec<EnvVar>, tls: Option<&Tls>) -> serde_json::Value {
        let template = pod_template(PodInputs {
            owner,
            image: "homestream-transformer:0.1.0",
            config_hash: "abc123",
            env,
            kafka_tls: tls,
            overrides: None,
            restart_policy: None,
        });
        serde_json::to_value(&template).unwrap()
    }

    /// The projected `kafka-tls` volume of a CA, certificate and key, each a
    /// `(secret, key)`, at the file names the runtime config points to.
    fn tls_volume(
        ca: (&str, &str),
        certificate: (&str, &str),
        key: (&str, &str),
    ) -> serde_json::Value {
        let item = |(secret, key): (&str, &str), path: &str| json!({ "secret": { "name": secret, "items": [{ "key": key, "path": path }], "optional": false } });
        json!({ "name": "kafka-tls", "projected": { "defaultMode": 0o400, "sources": [
            item(ca, "ca.crt"),
            item(certificate, "tls.crt"),
            item(key, "tls.key"),
        ] } })
    }

    fn tls_mount() -> serde_json::Value {
        json!({ "name": "kafka-tls", "mountPath": "/etc/homestream-tls/kafka", "readOnly": true })
    }

    #[test]
    fn kafka_tls_secrets_are_mounted_where_the_runtime_config_points() {
        let owner = owner();
        let tls = Tls {
            ca: Some(secret("kafka-cluster-ca", "ca.crt")),
            certificate: Some(secret("kafka-user", "user.crt")),
            key: Some(secret("kafka-user", "user.key")),
        };
        let value = transformer_pod(&owner, vec![], Some(&tls));
        assert_eq!(
            value["spec"]["volumes"][2],
            tls_volume(
                ("kafka-cluster-ca", "ca.crt"),
                ("kafka-user", "user.crt"),
                ("kafka-user", "user.key")
            )
        );
        assert_eq!(
            value["spec"]["containers"][0]["volumeMounts"][2],
            tls_mount()
        );
        assert_eq!(
            TlsFiles::mounted(&tls, KAFKA_TLS_DIR),
            TlsFiles {
                ca: Some("/etc/homestream-tls/kafka/ca.crt".to_owned()),
                certificate: Some("/etc/homestream-tls/kafka/tls.crt".to_owned()),
                key: Some("/etc/homestream-tls/kafka/tls.key".to_owned()),
            }
        );
        let ca_only = Tls {
            ca: tls.ca.clone(),
            certificate: None,
            key: None,
        };
        assert_eq!(
            TlsFiles::mounted(&ca_only, KAFKA_TLS_DIR),
            TlsFiles {
                ca: Some("/etc/homestream-tls/kafka/ca.crt".to_owned()),
                ..TlsFiles::default()
            }
        );
    }

    #[test]
    fn credentials_come_only_from_secrets() {
        let sasl = Sasl {
            mechanism: SaslMechanism::ScramSha512,
            credentials: Credentials {
                username: secret("kafka", "user"),
                password: secret("kafka", "pass"),
            },
        };
        let api_key = secret("realtor-api", "key");
        let env =
            serde_json::to_value(credential_env(Some(&sasl), None, &[&api_key, &api_key])).unwrap();
        assert_eq!(
            env,
            json!([
                { "name": "HOMESTREAM_KAFKA_USERNAME",
                  "valueFrom": { "secretKeyRef": { "name": "kafka", "key": "user", "optional": false } } },
                { "name": "HOMESTREAM_KAFKA_PASSWORD",
                  "valueFrom": { "secretKeyRef": { "name": "kafka", "key": "pass", "optional": false } } },
                { "name": "HOMESTREAM_SECRET_REALTOR_API_KEY",
                  "valueFrom": { "secretKeyRef": { "name": "realtor-api", "key": "key", "optional": false } } }
            ])
        );
    }

    #[test]
    fn an_s3_key_comes_from_its_secret() {
        let credentials = S3Credentials {
            access_key_id: secret("lake-writer", "id"),
            secret_access_key: secret("lake-writer", "secret"),
        };
        assert_eq!(
            serde_json::to_value(s3_credential_env(&credentials)).unwrap(),
            json!([
                { "name": "HOMESTREAM_S3_ACCESS_KEY_ID",
                  "valueFrom": { "secretKeyRef": { "name": "lake-writer", "key": "id", "optional": false } } },
                { "name": "HOMESTREAM_S3_SECRET_ACCESS_KEY",
                  "valueFrom": { "secretKeyRef": { "name": "lake-writer", "key": "secret", "optional": false } } }
            ])
        );
    }

    #[test]
    fn both_sinks_run_the_sink_subcommand_under_their_own_names() {
        let mut owner = owner();
        owner.component = Component::DeltaSink;
        let value = transformer_pod(&owner, vec![], None);
        assert_eq!(value["spec"]["containers"][0]["args"][0], "sink");
        assert_eq!(
            value["metadata"]["labels"]["app.kubernetes.io/component"],
            "delta-sink"
        );
        assert_eq!(
            value["spec"]["volumes"][0]["configMap"]["name"],
            "rm-delta-sink"
        );
        owner.component = Component::Sink;
        assert_eq!(owner.child_name(), "rm-sink");
    }

    #[test]
    fn operator_wide_defaults_reach_the_pod_as_a_mount_and_secret_env() {
        let config = crate::config::from_args(&[
            "--kafka-tls-ca=cluster-ca-cert/ca.crt",
            "--kafka-tls-certificate=homestream-user/user.crt",
            "--kafka-tls-key=homestream-user/user.key",
            "--kafka-sasl-mechanism=ScramSha512",
            "--kafka-sasl-username=homestream-kafka/username",
            "--kafka-sasl-password=homestream-kafka/password",
            "--kafka-admin-sasl-username-file=/etc/homestream/kafka/username",
            "--kafka-admin-sasl-password-file=/etc/homestream/kafka/password",
        ]);
        let settings = config.resolve_kafka(None);
        let owner = owner();
        let value = transformer_pod(
            &owner,
            credential_env(settings.sasl.as_ref(), None, &[]),
            settings.tls.as_ref(),
        );
        assert_eq!(
            value["spec"]["volumes"][2],
            tls_volume(
                ("cluster-ca-cert", "ca.crt"),
                ("homestream-user", "user.crt"),
                ("homestream-user", "user.key")
            )
        );
        let container = &value["spec"]["containers"][0];
        assert_eq!(container["volumeMounts"][2], tls_mount());
        let secret_env = |name: &str, key: &str| {
            json!({ "name": name,
            "valueFrom": { "secretKeyRef": { "name": "homestream-kafka", "key": key, "optional": false } } })
        };
        assert_eq!(
            container["env"][0],
            secret_env("HOMESTREAM_KAFKA_USERNAME", "username")
        );
        assert_eq!(
            container["env"][1],
            secret_env("HOMESTREAM_KAFKA_PASSWORD", "password")
        );
        let runtime = settings.runtime().tls.unwrap();
        for (file, mounted) in [
            (runtime.ca, "ca.crt"),
            (runtime.certificate, "tls.crt"),
            (runtime.key, "tls.key"),
        ] {
            assert_eq!(
                file.as_deref(),
                Some(format!("{KAFKA_TLS_DIR}/{mounted}").as_str()),
                "the runtime config points at the mounted file"
            );
        }
    }
}
