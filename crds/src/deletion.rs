//! What happens to external data (Kafka topics, Cassandra tables) when a resource that
//! created it is deleted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to do with the topics and tables a resource created when the resource is
/// deleted: `Retain` (the default) keeps them, `Delete` deletes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum DeletionPolicy {
    /// Keep topics and tables; only the workload goes.
    #[default]
    Retain,
    /// Delete the topics and tables this resource created.
    Delete,
}
