//! The children every runtime workload starts from, built in one step for all kinds:
//! the runtime configuration in a ConfigMap, and the pod template that mounts it,
//! annotated with the configuration's hash so that a changed configuration rolls the
//! pods.

use homestream_crds::connection::Tls;
use homestream_crds::runtime::RuntimeConfig;
use homestream_crds::workload::PodTemplate;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, PodTemplateSpec};
use serde::Serialize;

use super::config_map::{config_hash, config_map};
use super::labels::Owner;
use super::pod::{PodInputs, pod_template};

/// What a runtime workload is made of.
pub struct RuntimeInputs<'a, S> {
    /// The resource the workload runs for.
    pub owner: &'a Owner,
    /// The configuration the runtime reads.
    pub config: &'a RuntimeConfig<S>,
    /// The runtime image.
    pub image: &'a str,
    /// Environment variables (credentials from Secrets).
    pub env: Vec<EnvVar>,
    /// The Kafka TLS Secrets to mount.
    pub kafka_tls: Option<&'a Tls>,
    /// The resource's pod overrides.
    pub overrides: Option<&'a PodTemplate>,
    /// `Never` or `OnFailure` for Job pods; `None` for Deployments.
    pub restart_policy: Option<&'static str>,
}

/// A runtime workload's ConfigMap and pod template.
pub struct RuntimeChildren {
    /// The runtime configuration.
    pub config_map: ConfigMap,
    /// Its hash, which the pod template carries.
    pub config_hash: String,
    /// The pods' template.
    pub template: PodTemplateSpec,
}

/// Builds the ConfigMap, then the pod template that names its hash.
///
/// # Errors
/// When the configuration cannot be serialized.
pub fn runtime_children<S: Serialize>(
    inputs: RuntimeInputs<'_, S>,
) -> Result<RuntimeChildren, serde_yaml::Error> {
    let config_map = config_map(inputs.owner, inputs.config)?;
    let config_hash = config_hash(&config_map);
    let template = pod_template(PodInputs {
        owner: inputs.owner,
        image: inputs.image,
        config_hash: &config_hash,
        env: inputs.env,
        kafka_tls: inputs.kafka_tls,
        overrides: inputs.overrides,
        restart_policy: inputs.restart_policy,
    });
    Ok(RuntimeChildren {
        config_map,
        config_hash,
        template,
    })
}
