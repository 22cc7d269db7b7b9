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

/// The verdict on a table: its columns are [`ValidatedColumn`]s.
pub type TableDiff<'a> = crate::table_diff::TableDiff<'a, ValidatedColumn>;

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

#[cfg(test)]
mod tests {
    //! Every verdict of [`diff`], from a declared table and the columns Cassandra
    //! reports for it (`system_schema.columns` as the schema phase reads it).

    use homestream_crds::CassandraSinkSpec;

    use super::*;

    /// `homestream.listing_prices`: a two-column partition key, a descending clustering
    /// column, and a collection among the regular columns.
    const SPEC: &str = "
input: { topic: listings.normalised }
keyspace: { name: homestream, replication: { simpleStrategy: { replicationFactor: 1 } } }
table:
  name: listing_prices
  columns:
    - { name: source, type: text }
    - { name: listing_id, type: text }
    - { name: scraped_at, type: timestamp }
    - { name: price, type: bigint }
    - { name: features, type: 'map<text, int>' }
  partitionKey: [source, listing_id]
  clusteringKey: [{ column: scraped_at, order: Desc }]
";

    fn sink() -> ValidatedCassandraSink {
        let spec: CassandraSinkSpec = serde_yaml::from_str(SPEC).unwrap();
        spec.validate().unwrap()
    }

    fn column(
        name: &str,
        cql_type: &str,
        kind: &str,
        position: i32,
        order: &str,
    ) -> ExistingColumn {
        ExistingColumn {
            name: name.to_owned(),
            cql_type: cql_type.to_owned(),
            kind: kind.to_owned(),
            position,
            clustering_order: order.to_owned(),
        }
    }

    /// The table as Cassandra describes it after creating it from [`SPEC`] (in
    /// `system_schema`'s order: by name, not by key position).
    fn created_table() -> Vec<ExistingColumn> {
        vec![
            column("features", "map<text, int>", "regular", -1, "none"),
            column("listing_id", "text", "partition_key", 1, "none"),
            column("price", "bigint", "regular", -1, "none"),
            column("scraped_at", "timestamp", "clustering", 0, "desc"),
            column("source", "text", "partition_key", 0, "none"),
        ]
    }

    /// The table as created, with `change` made to it behind the operator's back.
    fn table_where(change: impl FnOnce(&mut Vec<ExistingColumn>)) -> Vec<ExistingColumn> {
        let mut table = created_table();
        change(&mut table);
        table
    }

    fn existing<'a>(table: &'a mut [ExistingColumn], name: &str) -> &'a mut ExistingColumn {
        table.iter_mut().find(|c| c.name == name).unwrap()
    }

    /// Asserts that `existing` is refused for `reason` with a message naming each of `names`.
    fn assert_refused(existing: &[ExistingColumn], reason: &str, names: &[&str]) {
        let sink = sink();
        let TableDiff::Refused {
            reason: actual,
            message,
        } = diff(&sink, existing)
        else {
            panic!("expected {reason}, got {:?}", diff(&sink, existing));
        };
        assert_eq!(actual, reason, "{message}");
        assert!(
            message.contains("homestream.listing_prices"),
            "names the table: {message}"
        );
        for name in names {
            assert!(message.contains(name), "names {name}: {message}");
        }
    }

    #[test]
    fn the_table_as_created_matches() {
        assert_eq!(diff(&sink(), &created_table()), TableDiff::Matches);
    }

    #[test]
    fn types_are_compared_without_spacing_or_case() {
        let table = table_where(|t| {
            existing(t, "features").cql_type = "MAP<text,int>".to_owned();
            existing(t, "scraped_at").clustering_order = "DESC".to_owned();
        });
        assert_eq!(diff(&sink(), &table), TableDiff::Matches);
    }

    #[test]
    fn declared_columns_the_table_lacks_are_missing_in_declaration_order() {
        let table = table_where(|t| t.retain(|c| c.name != "price" && c.name != "features"));
        let sink = sink();
        let TableDiff::MissingColumns(missing) = diff(&sink, &table) else {
            panic!("expected missing columns, got {:?}", diff(&sink, &table));
        };
        let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["price", "features"]);
        assert_eq!(
            missing[0], &sink.columns[3],
            "the declared column, type and all"
        );
    }

    #[test]
    fn a_partition_key_in_another_order_is_a_primary_key_change() {
        let table = table_where(|t| {
            existing(t, "source").position = 1;
            existing(t, "listing_id").position = 0;
        });
        assert_refused(
            &table,
            "PrimaryKeyChanged",
            &["(listing_id, source)", "(source, listing_id)"],
        );
    }

    #[test]
    fn a_column_added_to_the_partition_key_is_a_primary_key_change() {
        let table = table_where(|t| {
            let price = existing(t, "price");
            price.kind = "partition_key".to_owned();
            price.position = 2;
        });
        assert_refused(
            &table,
            "PrimaryKeyChanged",
            &["(source, listing_id, price)"],
        );
    }

    #[test]
    fn another_clustering_order_is_a_primary_key_change() {
        let table = table_where(|t| existing(t, "scraped_at").clustering_order = "asc".to_owned());
        assert_refused(&table, "PrimaryKeyChanged", &["\"asc\"", "\"desc\""]);
    }

    #[test]
    fn a_table_without_the_clustering_column_is_a_primary_key_change() {
        let table = table_where(|t| {
            let scraped_at = existing(t, "scraped_at");
            scraped_at.kind = "regular".to_owned();
            scraped_at.position = -1;
            scraped_at.clustering_order = "none".to_owned();
        });
        assert_refused(&table, "PrimaryKeyChanged", &["clustering key []"]);
    }

    #[test]
    fn a_column_of_another_type_is_a_column_type_change() {
        let table = table_where(|t| existing(t, "price").cql_type = "int".to_owned());
        assert_refused(
            &table,
            "ColumnTypeChanged",
            &["column price", "is int", "declares bigint"],
        );
    }

    #[test]
    fn a_collection_of_another_element_type_is_a_column_type_change() {
        let table =
            table_where(|t| existing(t, "features").cql_type = "map<text, bigint>".to_owned());
        assert_refused(
            &table,
            "ColumnTypeChanged",
            &["column features", "map<text, bigint>", "map<text, int>"],
        );
    }

    #[test]
    fn a_column_the_spec_no_longer_declares_is_refused() {
        let table = table_where(|t| t.push(column("agent", "text", "regular", -1, "none")));
        assert_refused(&table, "ColumnRemoved", &["column agent"]);
    }

    #[test]
    fn a_key_change_is_reported_before_column_changes() {
        let table = table_where(|t| {
            existing(t, "scraped_at").clustering_order = "asc".to_owned();
            existing(t, "price").cql_type = "int".to_owned();
            t.push(column("agent", "text", "regular", -1, "none"));
        });
        assert_refused(&table, "PrimaryKeyChanged", &["scraped_at"]);
    }
}
