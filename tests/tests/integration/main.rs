//! The stack's own tests and the end-to-end pipeline: one binary, run against the local stack and its node.

mod crd_apiserver;
mod e2e_pipeline;
mod images;
mod smoke_cassandra;
mod smoke_chromium;
mod smoke_kafka;
mod smoke_kubernetes;
