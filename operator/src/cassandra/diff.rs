//! Comparing a declared table with the one Cassandra has (pure): what may be added and
//! what must be refused.

use homestream_crds::cassandrasink::table::ClusteringOrder;
use homestream_crds::cassandrasink::{ValidatedCassandraSink, ValidatedColumn};

/// A column as `system_schema.columns` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingColumn {
    /// Column name.
    pub name: String,
    /// CQL type as Cassandra prints it, e.g. `map<text, int>`.
    pub cql_type: String,
    /// `partition_key`, `clustering` or `regular` (or `static`).
    pub kind: String,
    /// Position within the partition or clustering key.
    pub position: i32,
    /// `asc`, `desc` or `none`.
    pub clustering_order: String,
}

/// The verdict on an existing table.
#[derive(Clone, Debug, PartialEq)]
pub enum TableDiff<'a> {
    /// The table matches the declaration.
    Matches,
    /// Only declared columns are missing; they can be added.
    MissingColumns(Vec<&'a ValidatedColumn>),
    /// A change that would lose or reinterpret data.
    Refused {
        /// CamelCase reason.
        reason: &'static str,
        /// What differs and what to do.
        message: String,
    },
}

/// Compares the declared table of `sink` with `existing` columns.
pub fn diff<'a>(sink: &'a ValidatedCassandraSink, existing: &[ExistingColumn]) -> TableDiff<'a> {
    let table = format!("{}.{}", sink.keyspace, sink.table);
    let key_of = |kind: &str| {
        let mut columns: Vec<&ExistingColumn> =
            existing.iter().filter(|c| c.kind == kind).collect();
        columns.sort_by_key(|c| c.position);
        columns
    };
    let partition: Vec<&str> = key_of("partition_key")
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if partition
        != sink
            .partition_key
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    {
        return TableDiff::Refused {
            reason: "PrimaryKeyChanged",
            message: format!(
                "table {table} has partition key ({}), the spec declares ({}): a key cannot change; \
                 declare a new table",
                partition.join(", "),
                sink.partition_key.join(", ")
            ),
        };
    }
    let clustering: Vec<(String, String)> = key_of("clustering")
        .iter()
        .map(|c| (c.name.clone(), c.clustering_order.to_ascii_lowercase()))
        .collect();
    let declared_clustering: Vec<(String, String)> = sink
        .clustering_key
        .iter()
        .map(|(column, order)| {
            let order = match order {
                ClusteringOrder::Asc => "asc",
                ClusteringOrder::Desc => "desc",
            };
            (column.clone(), order.to_owned())
        })
        .collect();
    if clustering != declared_clustering {
        return TableDiff::Refused {
            reason: "PrimaryKeyChanged",
            message: format!(
                "table {table} has clustering key {clustering:?}, the spec declares {declared_clustering:?}: \
                 a key cannot change; declare a new table"
            ),
        };
    }
    for column in existing {
        match sink.columns.iter().find(|d| d.name == column.name) {
            None => {
                return TableDiff::Refused {
                    reason: "ColumnRemoved",
                    message: format!(
                        "table {table} has column {} that the spec no longer declares: homestream never \
                         drops a column; declare it again, or drop it yourself",
                        column.name
                    ),
                };
            }
            Some(declared)
                if normalize(&declared.cql_type.to_string()) != normalize(&column.cql_type) =>
            {
                return TableDiff::Refused {
                    reason: "ColumnTypeChanged",
                    message: format!(
                        "column {} of {table} is {}, the spec declares {}: Cassandra cannot change a \
                         column's type; add a new column instead",
                        column.name, column.cql_type, declared.cql_type
                    ),
                };
            }
            Some(_) => {}
        }
    }
    let missing: Vec<&ValidatedColumn> = sink
        .columns
        .iter()
        .filter(|d| !existing.iter().any(|c| c.name == d.name))
        .collect();
    if missing.is_empty() {
        TableDiff::Matches
    } else {
        TableDiff::MissingColumns(missing)
    }
}

fn normalize(cql_type: &str) -> String {
    cql_type
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}
