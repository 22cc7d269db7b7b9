//! What comparing a sink's declared table with the one in its store finds, for
//! Cassandra tables and Delta tables alike.

/// The verdict on a table, `C` being the store's declared column.
#[derive(Clone, Debug, PartialEq)]
pub enum TableDiff<'a, C> {
    /// The table matches the declaration.
    Matches,
    /// Only declared columns are missing; they can be added.
    MissingColumns(Vec<&'a C>),
    /// A change that would lose or reinterpret data.
    Refused {
        /// CamelCase reason.
        reason: &'static str,
        /// What differs and what to do.
        message: String,
    },
}
