//! The harness of the end-to-end tests (`tests/e2e_pipeline.rs`): each test's [`World`]
//! (its namespace, operator, isolated copy of the pipeline and Cassandra session), the
//! rows the demo pipeline must write, raw listings to load the transform and sinks
//! with, and what a StreamTransform's Deployment and status say.

pub mod expected;
pub mod load;
pub mod transform;
pub mod world;

use std::time::Duration;

pub use world::{Listener, World, ready_stack, with_world, with_world_on};

/// How long a pipeline may take to converge or drain here (debug builds, 2 cores).
pub const CONVERGE: Duration = Duration::from_secs(240);
