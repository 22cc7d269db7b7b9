//! CQL statements built from a validated CassandraSink (pure functions).

use homestream_crds::cassandrasink::table::{ClusteringOrder, CompactionClass};
use homestream_crds::cassandrasink::{
    ValidatedCassandraSink, ValidatedColumn, ValidatedReplication,
};

/// `CREATE KEYSPACE IF NOT EXISTS` with the declared replication.
pub fn create_keyspace(sink: &ValidatedCassandraSink) -> String {
    let replication = match &sink.replication {
        ValidatedReplication::Simple(factor) => {
            format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
        }
        ValidatedReplication::NetworkTopology(data_centers) => {
            let factors: Vec<String> = data_centers
                .iter()
                .map(|(dc, factor)| format!("{}: {factor}", quote_string(dc)))
                .collect();
            format!(
                "{{'class': 'NetworkTopologyStrategy', {}}}",
                factors.join(", ")
            )
        }
    };
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {replication}",
        quote_ident(&sink.keyspace)
    )
}

/// `CREATE TABLE` with columns, primary key and options. Without `IF NOT EXISTS`: only
/// an answer of success proves that this statement made the table (and so that the
/// operator may drop it); a table made meanwhile by someone else is an `AlreadyExists`.
pub fn create_table(sink: &ValidatedCassandraSink) -> String {
    let columns: Vec<String> = sink
        .columns
        .iter()
        .map(|c| format!("{} {}", quote_ident(&c.name), c.cql_type))
        .collect();
    let partition: Vec<String> = sink.partition_key.iter().map(|c| quote_ident(c)).collect();
    let mut key = format!("({})", partition.join(", "));
    for (column, _) in &sink.clustering_key {
        key.push_str(", ");
        key.push_str(&quote_ident(column));
    }
    let mut options = Vec::new();
    if !sink.clustering_key.is_empty() {
        let orders: Vec<String> = sink
            .clustering_key
            .iter()
            .map(|(column, order)| {
                let order = match order {
                    ClusteringOrder::Asc => "ASC",
                    ClusteringOrder::Desc => "DESC",
                };
                format!("{} {order}", quote_ident(column))
            })
            .collect();
        options.push(format!("CLUSTERING ORDER BY ({})", orders.join(", ")));
    }
    if let Some(ttl) = sink.default_time_to_live {
        options.push(format!("default_time_to_live = {ttl}"));
    }
    if let Some(compaction) = &sink.compaction {
        let mut entries = vec![format!("'class': '{}'", compaction_class(compaction.class))];
        for (key, value) in compaction.options.iter().flatten() {
            entries.push(format!("{}: {}", quote_string(key), quote_string(value)));
        }
        options.push(format!("compaction = {{{}}}", entries.join(", ")));
    }
    if let Some(comment) = &sink.comment {
        options.push(format!("comment = {}", quote_string(comment)));
    }
    let with = if options.is_empty() {
        String::new()
    } else {
        format!(" WITH {}", options.join(" AND "))
    };
    format!(
        "CREATE TABLE {}.{} ({}, PRIMARY KEY ({key})){with}",
        quote_ident(&sink.keyspace),
        quote_ident(&sink.table),
        columns.join(", ")
    )
}

/// `ALTER TABLE ... ADD` for one column.
pub fn add_column(sink: &ValidatedCassandraSink, column: &ValidatedColumn) -> String {
    format!(
        "ALTER TABLE {}.{} ADD {} {}",
        quote_ident(&sink.keyspace),
        quote_ident(&sink.table),
        quote_ident(&column.name),
        column.cql_type
    )
}

/// `DROP TABLE IF EXISTS` (deletionPolicy `Delete`).
pub fn drop_table(sink: &ValidatedCassandraSink) -> String {
    format!(
        "DROP TABLE IF EXISTS {}.{}",
        quote_ident(&sink.keyspace),
        quote_ident(&sink.table)
    )
}

fn compaction_class(class: CompactionClass) -> &'static str {
    match class {
        CompactionClass::SizeTieredCompactionStrategy => "SizeTieredCompactionStrategy",
        CompactionClass::LeveledCompactionStrategy => "LeveledCompactionStrategy",
        CompactionClass::TimeWindowCompactionStrategy => "TimeWindowCompactionStrategy",
        CompactionClass::UnifiedCompactionStrategy => "UnifiedCompactionStrategy",
    }
}

/// A double-quoted identifier: keeps the declared case and any reserved word safe.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
