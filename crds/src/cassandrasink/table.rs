//! The keyspace and table a CassandraSink writes to: replication, columns, primary key
//! and table options.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::duration::Duration;
use crate::format::jsonpath::JsonPath;
use crate::format::name::CqlIdentifier;

/// A keyspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.name == oldSelf.name")
        .message("keyspace name is immutable: create a new CassandraSink to write elsewhere"),
    validation = Rule::new("!self.name.startsWith('system')")
        .message("keyspace names starting with system are reserved by Cassandra")
)]
pub struct Keyspace {
    /// Name of the keyspace. Immutable.
    pub name: CqlIdentifier,
    /// Replication of a keyspace the operator creates (an existing keyspace is not altered).
    pub replication: Replication,
}

/// Replication strategy: exactly one of `simpleStrategy` or `networkTopologyStrategy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.simpleStrategy) != has(self.networkTopologyStrategy)")
    .message("replication takes exactly one of simpleStrategy or networkTopologyStrategy"))]
pub struct Replication {
    /// One replication factor for the whole cluster (development, single datacenter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simple_strategy: Option<SimpleStrategy>,
    /// A replication factor per datacenter (production).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_topology_strategy: Option<NetworkTopologyStrategy>,
}

/// `SimpleStrategy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimpleStrategy {
    /// Copies of each row, 1 to 10.
    #[schemars(range(min = 1, max = 10))]
    pub replication_factor: i32,
}

/// `NetworkTopologyStrategy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkTopologyStrategy {
    /// Copies of each row per datacenter name, 1 to 10 each, 1 to 16 datacenters.
    #[schemars(extend("minProperties" = 1, "maxProperties" = 16))]
    #[x_kube(validation = Rule::new("self.all(dc, self[dc] >= 1 && self[dc] <= 10)")
        .message("each datacenter's replication factor must be between 1 and 10"))]
    pub data_centers: BTreeMap<String, i32>,
}

/// A table and its primary key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.name == oldSelf.name")
        .message("table name is immutable: create a new CassandraSink to write to another table"),
    validation = Rule::new("self.partitionKey == oldSelf.partitionKey")
        .message("partitionKey is immutable: a Cassandra table's primary key cannot change"),
    validation = Rule::new("has(self.clusteringKey) == has(oldSelf.clusteringKey) && (!has(self.clusteringKey) || self.clusteringKey == oldSelf.clusteringKey)")
        .message("clusteringKey is immutable: a Cassandra table's primary key cannot change"),
    validation = Rule::new("self.partitionKey.all(k, self.partitionKey.filter(x, x == k).size() == 1)")
        .message("partitionKey columns must be unique"),
    validation = Rule::new("self.partitionKey.all(k, self.columns.exists(c, c.name == k))")
        .message("every partitionKey column must be one of table.columns"),
    validation = Rule::new("!has(self.clusteringKey) || self.clusteringKey.all(k, self.columns.exists(c, c.name == k.column))")
        .message("every clusteringKey column must be one of table.columns"),
    validation = Rule::new("!has(self.clusteringKey) || self.clusteringKey.all(k, !(k.column in self.partitionKey))")
        .message("a column cannot be in both partitionKey and clusteringKey")
)]
pub struct Table {
    /// Name of the table. Immutable.
    pub name: CqlIdentifier,
    /// The columns, 1 to 200, names unique. Columns may be added (`schemaPolicy:
    /// AddColumns`); removing one or changing its type is refused in status.
    #[schemars(length(min = 1, max = 200))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub columns: Vec<Column>,
    /// Partition key columns, in order, 1 to 16. Immutable.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub partition_key: Vec<CqlIdentifier>,
    /// Clustering columns, in order, at most 16. Immutable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub clustering_key: Option<Vec<ClusteringColumn>>,
    /// Table options used when the operator creates the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<TableOptions>,
}

/// A column and where its value comes from in the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.field) && has(self.jsonPath))")
    .message("a column takes field or jsonPath, not both"))]
pub struct Column {
    /// Column name.
    pub name: CqlIdentifier,
    /// CQL type, e.g. `text`, `bigint`, `timestamp`, `decimal`, `list<text>`,
    /// `map<text, int>`, `frozen<tuple<double, double>>`. `counter` is not supported.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 256))]
    pub cql_type: String,
    /// Top-level record field holding the value. Unset (and no `jsonPath`): the field
    /// named like the column.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub field: Option<String>,
    /// JSONPath of the value in the record, for nested values (e.g. `$._meta.scrapedAt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPath>,
}

/// A clustering column and its order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusteringColumn {
    /// Column name.
    pub column: CqlIdentifier,
    /// `Asc` (the default) or `Desc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<ClusteringOrder>,
}

/// Clustering order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum ClusteringOrder {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Options of a table the operator creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableOptions {
    /// Rows expire this long after they were written (whole seconds, up to 20 years,
    /// e.g. `720h`). Unset: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_time_to_live: Option<Duration>,
    /// Compaction strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<Compaction>,
    /// Table comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
}

/// Compaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compaction {
    /// Strategy class: `SizeTieredCompactionStrategy`, `LeveledCompactionStrategy`,
    /// `TimeWindowCompactionStrategy` or `UnifiedCompactionStrategy`.
    pub class: CompactionClass,
    /// Strategy options as strings (e.g. `compaction_window_unit: DAYS`), at most 16.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub options: Option<BTreeMap<String, String>>,
}

/// Compaction strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::field_describes_enum)]
pub enum CompactionClass {
    /// Size-tiered (Cassandra's default).
    SizeTieredCompactionStrategy,
    /// Leveled (read-heavy tables).
    LeveledCompactionStrategy,
    /// Time-window (time series with TTL).
    TimeWindowCompactionStrategy,
    /// Unified (Cassandra 5).
    UnifiedCompactionStrategy,
}
