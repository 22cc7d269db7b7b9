//! The homestream operator: one controller per kind (ScrapeJob, StreamTransform,
//! CassandraSink, DeltaSink) that creates the Kafka topics, Cassandra tables and Delta
//! tables the resources declare, runs their runtime workloads, and reports honest status.

pub mod build;
pub mod cassandra;
pub mod config;
pub mod controller;
pub mod kafka;
pub mod lake;
pub mod leader;
pub mod metrics;
pub mod schedule;
pub mod status;
pub mod table_diff;
