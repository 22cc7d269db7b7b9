//! Cassandra schema as CassandraSinks declare it: keyspace and table created, new
//! columns added under `AddColumns`, and every change that would lose or reinterpret
//! data (a removed column, a new type, another key) refused in status, never applied.

pub mod ddl;
pub mod diff;
pub mod schema;
