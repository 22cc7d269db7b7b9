//! The homestream API, group `homestream.io`, version `v1alpha1`: the
//! [`ScrapeJob`](scrapejob::ScrapeJob), [`StreamTransform`](streamtransform::StreamTransform)
//! [`CassandraSink`](cassandrasink::CassandraSink) and [`DeltaSink`](deltasink::DeltaSink)
//! custom resources.
//!
//! The types are the contract users write in Git: every field's `///` doc becomes the
//! schema description that `kubectl explain` shows, and the CEL rules in the schema
//! refuse bad input at `kubectl apply`. What CEL cannot check (selector and JSONPath
//! syntax, cron ranges, CQL types, ...) each spec's `validate` method checks, turning
//! the spec into a `Validated...` value with typed fields for the operator to build
//! from. [`generate`] renders the CRD YAML committed under `manifests/crds/`.

pub mod cassandrasink;
pub mod conditions;
pub mod connection;
pub mod cql;
pub mod deletion;
pub mod deltasink;
pub mod format;
pub mod generate;
pub mod record;
pub mod runtime;
mod schema;
pub mod schema_policy;
pub mod scrapejob;
pub mod secret;
pub mod streamtransform;
pub mod topic;
pub mod validation;
pub mod workload;

pub use cassandrasink::{CassandraSink, CassandraSinkSpec, CassandraSinkStatus};
pub use deltasink::{DeltaSink, DeltaSinkSpec, DeltaSinkStatus};
pub use scrapejob::{ScrapeJob, ScrapeJobSpec, ScrapeJobStatus};
pub use streamtransform::{StreamTransform, StreamTransformSpec, StreamTransformStatus};
pub use validation::{FieldError, InvalidSpec};
