//! Comparing a declared Delta table with the one in storage (pure): what may be added
//! and what must be refused. Types are compared as DDL text (`decimal(12,2)`,
//! `array<string>`), which ignores what does not change a value's meaning to a reader
//! (nullability, field metadata such as column-mapping ids).

use deltalake::kernel::{DataType, PrimitiveType, StructType};
use homestream_crds::deltasink::{ValidatedDeltaSink, ValidatedLakeColumn};

/// A table's schema as its log describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingTable {
    /// The columns, in the table's order.
    pub columns: Vec<ExistingColumn>,
    /// The partition columns, in path order.
    pub partition_columns: Vec<String>,
}

/// A column of an existing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingColumn {
    /// Column name.
    pub name: String,
    /// Its type as DDL text, e.g. `map<string,int>` ([`type_text`]).
    pub lake_type: String,
}

impl ExistingTable {
    /// The columns and partition columns of a table's schema.
    pub fn new(schema: &StructType, partition_columns: &[String]) -> Self {
        Self {
            columns: schema
                .fields()
                .map(|field| ExistingColumn {
                    name: field.name().clone(),
                    lake_type: type_text(field.data_type()),
                })
                .collect(),
            partition_columns: partition_columns.to_vec(),
        }
    }
}

/// The verdict on a table: its columns are [`ValidatedLakeColumn`]s.
pub type TableDiff<'a> = crate::table_diff::TableDiff<'a, ValidatedLakeColumn>;

/// Compares the declared table of `sink` with `existing`: the partition columns first
/// (they shape every path), then each column of the table, then what the table lacks.
pub fn diff<'a>(sink: &'a ValidatedDeltaSink, existing: &ExistingTable) -> TableDiff<'a> {
    let table = sink.location.as_str();
    if existing.partition_columns != sink.partition_by {
        return TableDiff::Refused {
            reason: "PartitionColumnsChanged",
            message: format!(
                "table {table} is partitioned by ({}), the spec declares ({}): a Delta table's \
                 partition columns cannot change; write to a new location",
                existing.partition_columns.join(", "),
                sink.partition_by.join(", ")
            ),
        };
    }
    for column in &existing.columns {
        match sink.columns.iter().find(|d| d.name == column.name) {
            None => {
                return TableDiff::Refused {
                    reason: "ColumnRemoved",
                    message: format!(
                        "table {table} has column {} ({}) that the spec no longer declares: \
                         homestream never drops a column; declare it again",
                        column.name, column.lake_type
                    ),
                };
            }
            Some(declared) if declared.lake_type.to_string() != column.lake_type => {
                return TableDiff::Refused {
                    reason: "ColumnTypeChanged",
                    message: format!(
                        "column {} of {table} is {}, the spec declares {}: the files already \
                         written hold {}; add a new column instead",
                        column.name, column.lake_type, declared.lake_type, column.lake_type
                    ),
                };
            }
            Some(_) => {}
        }
    }
    let missing: Vec<&ValidatedLakeColumn> = sink
        .columns
        .iter()
        .filter(|d| !existing.columns.iter().any(|c| c.name == d.name))
        .collect();
    if missing.is_empty() {
        TableDiff::Matches
    } else {
        TableDiff::MissingColumns(missing)
    }
}

/// A Delta type as the DeltaSink API writes types (`long`, `int`, `decimal(12,2)`,
/// `map<string,int>`, `struct<lat:double,lon:double>`); types the API has no name for
/// (`timestamp_ntz`, `binary`, `short`...) by their Delta name, so they never match a
/// declared type.
pub fn type_text(data_type: &DataType) -> String {
    match data_type {
        DataType::Primitive(primitive) => primitive_text(primitive),
        DataType::Array(array) => format!("array<{}>", type_text(array.element_type())),
        DataType::Map(map) => format!(
            "map<{},{}>",
            type_text(map.key_type()),
            type_text(map.value_type())
        ),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .fields()
                .map(|field| format!("{}:{}", field.name(), type_text(field.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::Variant(_) => "variant".to_owned(),
    }
}

fn primitive_text(primitive: &PrimitiveType) -> String {
    match primitive {
        PrimitiveType::String => "string".to_owned(),
        PrimitiveType::Long => "long".to_owned(),
        PrimitiveType::Integer => "int".to_owned(),
        PrimitiveType::Double => "double".to_owned(),
        PrimitiveType::Float => "float".to_owned(),
        PrimitiveType::Boolean => "boolean".to_owned(),
        PrimitiveType::Timestamp => "timestamp".to_owned(),
        PrimitiveType::Date => "date".to_owned(),
        PrimitiveType::Decimal(decimal) => {
            format!("decimal({},{})", decimal.precision(), decimal.scale())
        }
        // The log's own name (`timestamp_ntz`, `binary`, `short`...), as Spark shows it.
        other => serde_json::to_value(other)
            .ok()
            .and_then(|name| name.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{other:?}").to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    //! Every verdict of [`diff`], from a declared table and the schema its log holds.

    use deltalake::kernel::{ArrayType, MapType, StructField};
    use homestream_crds::DeltaSinkSpec;

    use super::*;

    /// The listings table: a decimal, a collection, a struct, a partition date.
    const SPEC: &str = "
input: { topic: listings.normalised }
table:
  location: s3://homestream/lake/listings
  columns:
    - { name: listing_id, type: string }
    - { name: price, type: 'decimal(12,2)' }
    - { name: features, type: 'map<string,int>' }
    - { name: geo, type: 'struct<lat:double,lon:double>' }
    - { name: scraped_date, type: date, jsonPath: $.scraped_at }
  partitionBy: [scraped_date]
";

    fn sink() -> ValidatedDeltaSink {
        let spec: DeltaSinkSpec = serde_yaml::from_str(SPEC).unwrap();
        spec.validate().unwrap()
    }

    /// The table as the operator creates it from [`SPEC`], read back as its log has it.
    fn created_table() -> ExistingTable {
        let sink = sink();
        let fields = homestream_common::lake::schema::fields(&sink.columns).unwrap();
        ExistingTable::new(
            &StructType::try_new(fields).unwrap(),
            &["scraped_date".to_owned()],
        )
    }

    /// The table as created, with `change` made to it behind the operator's back.
    fn table_where(change: impl FnOnce(&mut ExistingTable)) -> ExistingTable {
        let mut table = created_table();
        change(&mut table);
        table
    }

    fn column<'a>(table: &'a mut ExistingTable, name: &str) -> &'a mut ExistingColumn {
        table.columns.iter_mut().find(|c| c.name == name).unwrap()
    }

    /// Asserts that `existing` is refused for `reason` with a message naming each of `names`.
    fn assert_refused(existing: &ExistingTable, reason: &str, names: &[&str]) {
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
            message.contains("s3://homestream/lake/listings"),
            "names the table: {message}"
        );
        for name in names {
            assert!(message.contains(name), "names {name}: {message}");
        }
    }

    #[test]
    fn the_table_as_created_matches() {
        let table = created_table();
        let types: Vec<&str> = table.columns.iter().map(|c| c.lake_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "string",
                "decimal(12,2)",
                "map<string,int>",
                "struct<lat:double,lon:double>",
                "date"
            ],
            "read back in the API's own words"
        );
        assert_eq!(diff(&sink(), &table), TableDiff::Matches);
    }

    #[test]
    fn nullability_does_not_make_another_type() {
        let strict = StructType::try_new([
            StructField::not_null("tags", ArrayType::new(DataType::STRING, false)),
            StructField::nullable(
                "counts",
                MapType::new(DataType::STRING, DataType::LONG, false),
            ),
        ])
        .unwrap();
        let table = ExistingTable::new(&strict, &[]);
        let types: Vec<&str> = table.columns.iter().map(|c| c.lake_type.as_str()).collect();
        assert_eq!(types, ["array<string>", "map<string,long>"]);
    }

    #[test]
    fn types_the_api_cannot_declare_never_match() {
        let other = StructType::try_new([
            StructField::nullable("at", DataType::TIMESTAMP_NTZ),
            StructField::nullable("raw", DataType::BINARY),
        ])
        .unwrap();
        let table = ExistingTable::new(&other, &[]);
        let types: Vec<&str> = table.columns.iter().map(|c| c.lake_type.as_str()).collect();
        assert_eq!(types, ["timestamp_ntz", "binary"]);
    }

    #[test]
    fn declared_columns_the_table_lacks_are_missing_in_declaration_order() {
        let table = table_where(|t| t.columns.retain(|c| c.name != "price" && c.name != "geo"));
        let sink = sink();
        let TableDiff::MissingColumns(missing) = diff(&sink, &table) else {
            panic!("expected missing columns, got {:?}", diff(&sink, &table));
        };
        let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["price", "geo"]);
        assert_eq!(
            missing[0], &sink.columns[1],
            "the declared column, type and all"
        );
    }

    #[test]
    fn a_column_of_another_type_is_a_column_type_change() {
        let table = table_where(|t| column(t, "price").lake_type = "double".to_owned());
        assert_refused(
            &table,
            "ColumnTypeChanged",
            &["column price", "is double", "declares decimal(12,2)"],
        );
    }

    #[test]
    fn a_wider_decimal_or_another_struct_is_a_column_type_change() {
        let table = table_where(|t| column(t, "price").lake_type = "decimal(14,2)".to_owned());
        assert_refused(&table, "ColumnTypeChanged", &["decimal(14,2)"]);
        let table = table_where(|t| {
            column(t, "geo").lake_type = "struct<lon:double,lat:double>".to_owned();
        });
        assert_refused(
            &table,
            "ColumnTypeChanged",
            &[
                "struct<lon:double,lat:double>",
                "struct<lat:double,lon:double>",
            ],
        );
    }

    #[test]
    fn a_column_the_spec_no_longer_declares_is_refused() {
        let table = table_where(|t| {
            t.columns.push(ExistingColumn {
                name: "agent".to_owned(),
                lake_type: "string".to_owned(),
            });
        });
        assert_refused(&table, "ColumnRemoved", &["column agent (string)"]);
    }

    #[test]
    fn other_partition_columns_are_refused_before_column_changes() {
        let table = table_where(|t| {
            t.partition_columns = vec!["scraped_date".to_owned(), "listing_id".to_owned()];
            column(t, "price").lake_type = "double".to_owned();
        });
        assert_refused(
            &table,
            "PartitionColumnsChanged",
            &["(scraped_date, listing_id)", "(scraped_date)"],
        );
        let unpartitioned = table_where(|t| t.partition_columns.clear());
        assert_refused(&unpartitioned, "PartitionColumnsChanged", &["by ()"]);
    }
}
