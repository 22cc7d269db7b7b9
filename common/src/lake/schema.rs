//! A Delta table's schema from a DeltaSink's declared columns.
//!
//! Every column is nullable in the table: a required value is the sink's check, and
//! only nullable columns can be added to an existing table.

use deltalake::DeltaTableError;
use deltalake::kernel::{ArrayType, DataType, MapType, StructField, StructType};
use homestream_crds::deltasink::{LakeType, ValidatedLakeColumn};

/// The Delta type of a declared type.
///
/// # Errors
/// When `deltalake` refuses a decimal's precision or scale (validation already bounds them).
pub fn data_type(lake_type: &LakeType) -> Result<DataType, DeltaTableError> {
    Ok(match lake_type {
        LakeType::String => DataType::STRING,
        LakeType::Long => DataType::LONG,
        LakeType::Int => DataType::INTEGER,
        LakeType::Double => DataType::DOUBLE,
        LakeType::Float => DataType::FLOAT,
        LakeType::Boolean => DataType::BOOLEAN,
        LakeType::Timestamp => DataType::TIMESTAMP,
        LakeType::Date => DataType::DATE,
        LakeType::Decimal { precision, scale } => DataType::decimal(*precision, *scale)
            .map_err(|error| DeltaTableError::Generic(error.to_string()))?,
        LakeType::Array(element) => ArrayType::new(data_type(element)?, true).into(),
        LakeType::Map(value) => MapType::new(DataType::STRING, data_type(value)?, true).into(),
        LakeType::Struct(fields) => DataType::Struct(Box::new(struct_type(
            fields
                .iter()
                .map(|(name, field_type)| Ok(StructField::nullable(name, data_type(field_type)?)))
                .collect::<Result<Vec<_>, DeltaTableError>>()?,
        )?)),
    })
}

/// The table's fields, in the declared order.
///
/// # Errors
/// As [`data_type`].
pub fn fields(columns: &[ValidatedLakeColumn]) -> Result<Vec<StructField>, DeltaTableError> {
    columns
        .iter()
        .map(|column| {
            Ok(StructField::nullable(
                &column.name,
                data_type(&column.lake_type)?,
            ))
        })
        .collect()
}

fn struct_type(fields: Vec<StructField>) -> Result<StructType, DeltaTableError> {
    StructType::try_new(fields).map_err(|error| DeltaTableError::Generic(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_map_to_delta_types() {
        let parsed = LakeType::parse("array<struct<name:string,price:decimal(12,2)>>").unwrap();
        let DataType::Array(array) = data_type(&parsed).unwrap() else {
            panic!("not an array");
        };
        let DataType::Struct(element) = array.element_type() else {
            panic!("not a struct");
        };
        let names: Vec<&String> = element.fields().map(StructField::name).collect();
        assert_eq!(names, ["name", "price"]);
    }
}
