//! How far the operator manages the schema of a table a sink writes to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How far the operator manages a sink's table (and a CassandraSink's keyspace).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum SchemaPolicy {
    /// Create if missing; never alter.
    #[default]
    Create,
    /// Create if missing and add new columns.
    AddColumns,
    /// Never create or alter; only check.
    Unmanaged,
}
