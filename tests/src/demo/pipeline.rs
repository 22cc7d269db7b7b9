//! The demo pipeline as the manifests in `manifests/examples/` declare it: the demo's
//! two ScrapeJobs and their Secret (`examples/demo/`) and the example cleaning
//! StreamTransform, CassandraSinks and DeltaSink (`examples/pipeline/`), pointed at a running demo
//! site and, for tests, isolated in topics and a keyspace of their own.

use anyhow::{Context, Result, bail};
use kube::api::DynamicObject;
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::crds::repo_path;
use crate::manifests;

/// The demo site's address in the committed demo manifests.
pub const MANIFEST_SITE: &str = "http://127.0.0.1:18090";
/// The REST API key the committed Secret `demo-api-key` holds.
pub const API_KEY: &str = "homestream-demo-key";
/// The field manager the pipeline is applied with.
pub const MANAGER: &str = "homestream-demo";

/// The manifests of the demo pipeline, in the order they are applied (the Secret before
/// the ScrapeJob that reads it).
const FILES: [&str; 7] = [
    "demo/demo-api-key.secret.yaml",
    "demo/london-rentals.scrapejob.yaml",
    "demo/la-rentals.scrapejob.yaml",
    "pipeline/normalise-listings.streamtransform.yaml",
    "pipeline/listings.cassandrasink.yaml",
    "pipeline/listing-prices.cassandrasink.yaml",
    "pipeline/listings-lake.deltasink.yaml",
];

/// What keeps one copy of the pipeline apart from another on the same Kafka, Cassandra,
/// S3 and node: every topic and explicit consumer group gets `topic_prefix`, every
/// table lands in `keyspace`, every Delta table's location gets `topic_prefix` as its
/// first folder, and every pod asks for [`ISOLATED_CPU_REQUEST`] of CPU.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Prefixed to topic names and explicit consumer groups, with a dot.
    pub topic_prefix: String,
    /// The keyspace of every table.
    pub keyspace: String,
}

impl Isolation {
    /// The topic the pipeline calls `topic`, under this isolation.
    pub fn topic(&self, topic: &str) -> String {
        format!("{}.{topic}", self.topic_prefix)
    }

    /// The Delta table location the pipeline calls `location`, under this isolation.
    pub fn location(&self, location: &str) -> String {
        match location
            .split_once("://")
            .and_then(|(scheme, rest)| Some((scheme, rest.split_once('/')?)))
        {
            Some((scheme, (bucket, path))) => {
                format!("{scheme}://{bucket}/{}/{path}", self.topic_prefix)
            }
            None => location.to_owned(),
        }
    }

    fn rewrite(&self, object: &mut DynamicObject) {
        let resource = is_resource(object);
        let Some(spec) = object.data.get_mut("spec") else {
            return;
        };
        for path in [
            &["output", "topic", "name"][..],
            &["deadLetter", "topic", "name"],
            &["input", "topic"],
            &["input", "consumerGroup"],
        ] {
            if let Some(Value::String(name)) = pointer_mut(spec, path) {
                *name = self.topic(name);
            }
        }
        if let Some(Value::String(name)) = pointer_mut(spec, &["keyspace", "name"]) {
            name.clone_from(&self.keyspace);
        }
        if let Some(Value::String(location)) = pointer_mut(spec, &["table", "location"]) {
            *location = self.location(location);
        }
        if resource {
            spec["template"]["resources"]["requests"] = serde_json::json!({
                "cpu": ISOLATED_CPU_REQUEST, "memory": "64Mi"
            });
        }
    }
}

/// The CPU each pod of an isolated copy asks for. The operator's default (100m) lets
/// the scheduler place only 20 pods on the stack's 2-core node, fewer than the
/// end-to-end tests run at once; what they use is far below either.
pub const ISOLATED_CPU_REQUEST: &str = "10m";

fn pointer_mut<'v>(value: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(value, |value, key| value.get_mut(*key))
}

/// The pipeline's objects with the demo site at `site` (`http://HOST:PORT`), isolated
/// when `isolation` is given.
///
/// # Errors
/// When a manifest cannot be read or parsed.
pub fn objects(site: &str, isolation: Option<&Isolation>) -> Result<Vec<DynamicObject>> {
    let mut objects = Vec::new();
    for file in FILES {
        let path = repo_path("manifests/examples").join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .replace(MANIFEST_SITE, site);
        let parsed = manifests::parse_documents(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        objects.extend(parsed);
    }
    if let Some(isolation) = isolation {
        objects
            .iter_mut()
            .for_each(|object| isolation.rewrite(object));
    }
    Ok(objects)
}

/// Whether `object` is one of homestream's resources (not, say, a Secret).
pub fn is_resource(object: &DynamicObject) -> bool {
    object
        .types
        .as_ref()
        .is_some_and(|t| t.api_version.starts_with("homestream.io/"))
}

/// The object named `name` among `objects`, to change before it is applied.
///
/// # Panics
/// When there is none: the caller names one of the pipeline's own objects.
pub fn named<'o>(objects: &'o mut [DynamicObject], name: &str) -> &'o mut DynamicObject {
    objects
        .iter_mut()
        .find(|o| o.name_any() == name)
        .expect("the object is in the list")
}

/// The topics the pipeline writes (outputs and dead-letter topics), each once, in
/// the order the objects declare them.
pub fn topics(objects: &[DynamicObject]) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    for object in objects {
        for path in [
            &["output", "topic", "name"],
            &["deadLetter", "topic", "name"],
        ] {
            if let Some(Value::String(name)) = path
                .iter()
                .try_fold(&object.data["spec"], |value, key| value.get(*key))
                && !topics.contains(name)
            {
                topics.push(name.clone());
            }
        }
    }
    topics
}

/// Applies `objects` into `namespace` as a user would.
///
/// # Errors
/// When the apiserver refuses one, with its message.
pub async fn apply(client: &Client, namespace: &str, objects: &[DynamicObject]) -> Result<()> {
    for object in objects {
        if let Err(message) = manifests::apply(client, namespace, MANAGER, object).await? {
            bail!(
                "the apiserver refused {}: {message}",
                object.metadata.name.as_deref().unwrap_or("an object")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_renames_topics_groups_keyspace_and_table_location() {
        let isolation = Isolation {
            topic_prefix: "t1".to_owned(),
            keyspace: "ks1".to_owned(),
        };
        let objects = objects("http://127.0.0.1:1234", Some(&isolation)).unwrap();
        let text = serde_json::to_string(&objects).unwrap();
        assert!(text.contains("http://127.0.0.1:1234/to-rent/london/1"));
        assert!(!text.contains(MANIFEST_SITE));
        let spec = |name: &str| {
            objects
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(name))
                .map(|o| o.data["spec"].clone())
                .unwrap()
        };
        for (name, pointer, isolated) in [
            ("la-rentals", "/output/topic/name", "t1.listings.raw"),
            ("normalise-listings", "/input/topic", "t1.listings.raw"),
            (
                "normalise-listings",
                "/deadLetter/topic/name",
                "t1.listings.normalised.dead-letter",
            ),
            (
                "listing-prices",
                "/input/consumerGroup",
                "t1.homestream.listing-prices",
            ),
            ("listings", "/keyspace/name", "ks1"),
            (
                "listings-lake",
                "/table/location",
                "s3://homestream/t1/lake/listings",
            ),
            (
                "listings",
                "/template/resources/requests/cpu",
                ISOLATED_CPU_REQUEST,
            ),
        ] {
            assert_eq!(
                spec(name).pointer(pointer),
                Some(&Value::from(isolated)),
                "{name} {pointer}"
            );
        }
        let secret = &objects[0];
        assert_eq!(secret.name_any(), "demo-api-key");
        assert!(secret.data.get("spec").is_none(), "{:?}", secret.data);
        assert_eq!(
            topics(&objects),
            [
                "t1.listings.raw",
                "t1.listings.normalised",
                "t1.listings.normalised.dead-letter",
                "t1.listings.sink.dead-letter",
                "t1.listings.lake.dead-letter"
            ]
        );
    }
}
