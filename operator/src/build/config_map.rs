//! The ConfigMap holding a runtime's configuration, and the hash that rolls its pods.

use std::collections::BTreeMap;

use homestream_crds::runtime::{CONFIG_KEY, RuntimeConfig};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::labels::Owner;

/// The runtime configuration rendered as the ConfigMap the pods mount.
///
/// # Errors
/// When the configuration cannot be serialized (it always can: plain data).
pub fn config_map<S: Serialize>(
    owner: &Owner,
    config: &RuntimeConfig<S>,
) -> Result<ConfigMap, serde_yaml::Error> {
    let yaml = serde_yaml::to_string(config)?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(owner.child_name()),
            namespace: Some(owner.namespace.clone()),
            labels: Some(owner.labels()),
            owner_references: Some(vec![owner.reference.clone()]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(CONFIG_KEY.to_owned(), yaml)])),
        ..ConfigMap::default()
    })
}

/// A short, stable hash of the ConfigMap's data: the pod template carries it, so a
/// configuration change rolls the pods.
pub fn config_hash(config_map: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in config_map.data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use homestream_crds::runtime::{ResolvedKafka, ResourceIdentity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;
    use crate::build::labels::Component;

    fn config(program: &str) -> RuntimeConfig<serde_json::Value> {
        RuntimeConfig {
            resource: ResourceIdentity {
                kind: "StreamTransform".to_owned(),
                namespace: "n".to_owned(),
                name: "t".to_owned(),
                generation: 1,
            },
            spec: serde_json::json!({ "program": program }),
            kafka: ResolvedKafka {
                bootstrap_servers: vec!["k:9092".to_owned()],
                tls: None,
                sasl_mechanism: None,
            },
            cassandra: None,
            s3: None,
        }
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_config() {
        let owner = Owner {
            namespace: "n".to_owned(),
            name: "t".to_owned(),
            reference: OwnerReference::default(),
            component: Component::Transform,
        };
        let first = config_map(&owner, &config(".a = 1")).unwrap();
        assert_eq!(first.metadata.name.as_deref(), Some("t-transform"));
        assert!(first.data.as_ref().unwrap()[CONFIG_KEY].contains(".a = 1"));
        assert_eq!(
            config_hash(&first),
            config_hash(&config_map(&owner, &config(".a = 1")).unwrap())
        );
        assert_ne!(
            config_hash(&first),
            config_hash(&config_map(&owner, &config(".a = 2")).unwrap())
        );
    }
}
