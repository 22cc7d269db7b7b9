//! The resources of the scenarios: a minimal valid spec per kind, in YAML, handed over
//! as the apiserver would (namespace, uid, generation, resourceVersion), each with an
//! edit of the whole object that makes the scenario's case.

use homestream_crds::{CassandraSink, DeltaSink, ScrapeJob, StreamTransform};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::controller::cleanup::FINALIZER;

/// The namespace of every resource.
pub const NAMESPACE: &str = "listings";
/// The generation of every resource, which its conditions must be written for.
pub const GENERATION: i64 = 3;
/// The resource version of every resource.
pub const RESOURCE_VERSION: &str = "41";
/// A finalizer of someone else's, which the operator must leave alone.
pub const OTHERS_FINALIZER: &str = "backup.example.com/snapshot";

/// A one-page JSON API scraped once.
const SCRAPE_JOB: &str = "
source: { http: { url: 'https://api.example.com/listings' } }
extract:
  items: { json: { path: '$.results[*]' } }
  fields: [{ name: id, jsonPath: '$.id' }]
  key: id
output: { topic: { name: listings.raw } }
";

/// A program from `listings.raw` to `listings.normalised`.
const STREAM_TRANSFORM: &str = "
input: { topic: listings.raw }
output: { topic: { name: listings.normalised } }
program: |
  .price = to_int!(.price)
";

/// Rows of `listings.normalised` in `homestream.listings`.
const CASSANDRA_SINK: &str = "
input: { topic: listings.normalised }
keyspace: { name: homestream, replication: { simpleStrategy: { replicationFactor: 1 } } }
table:
  name: listings
  columns:
    - { name: listing_id, type: text }
    - { name: features, type: 'map<text, int>' }
  partitionKey: [listing_id]
";

/// Rows of `listings.normalised` in a Delta table partitioned by the scrape date.
const DELTA_SINK: &str = "
input: { topic: listings.normalised }
table:
  location: s3://homestream/lake/listings
  columns:
    - { name: listing_id, type: string }
    - { name: price, type: long }
    - { name: scraped_date, type: date, jsonPath: $.scraped_at }
  partitionBy: [scraped_date]
";

/// The ScrapeJob `rentals`, edited by `edit`.
pub fn scrape_job(edit: impl FnOnce(&mut Value)) -> ScrapeJob {
    resource("rentals", SCRAPE_JOB, edit)
}

/// The StreamTransform `normalise`, edited by `edit`.
pub fn transform(edit: impl FnOnce(&mut Value)) -> StreamTransform {
    resource("normalise", STREAM_TRANSFORM, edit)
}

/// The CassandraSink `listings`, edited by `edit`.
pub fn sink(edit: impl FnOnce(&mut Value)) -> CassandraSink {
    resource("listings", CASSANDRA_SINK, edit)
}

/// The DeltaSink `listings-lake`, edited by `edit`.
pub fn delta_sink(edit: impl FnOnce(&mut Value)) -> DeltaSink {
    resource("listings-lake", DELTA_SINK, edit)
}

/// No edit: the resource as written above.
pub fn as_written(_: &mut Value) {}

/// Sets `deletionPolicy`.
pub fn deletion_policy(object: &mut Value, policy: &str) {
    object["spec"]["deletionPolicy"] = json!(policy);
}

/// Sets the finalizers; `cleanup` puts the operator's first.
pub fn finalizers(object: &mut Value, cleanup: bool) {
    let mut finalizers = vec![OTHERS_FINALIZER];
    if cleanup {
        finalizers.insert(0, FINALIZER);
    }
    object["metadata"]["finalizers"] = json!(finalizers);
}

/// Marks the resource as being deleted.
pub fn being_deleted(object: &mut Value) {
    object["metadata"]["deletionTimestamp"] = json!("2026-01-02T03:04:05Z");
}

fn resource<K>(name: &str, spec: &str, edit: impl FnOnce(&mut Value)) -> K
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let spec: Value = serde_yaml::from_str(spec).unwrap();
    let mut object = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": format!("uid-{name}"),
            "generation": GENERATION,
            "resourceVersion": RESOURCE_VERSION,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
    });
    edit(&mut object);
    serde_json::from_value(object).unwrap()
}
