//! Names of things outside Kubernetes: Kafka topics and consumer groups, Cassandra
//! keyspaces, tables and columns, HTTP headers.

use super::string_format;

string_format! {
    /// A Kafka topic name: 1 to 249 characters of letters, digits, `.`, `_` and `-`.
    TopicName,
    max_length = 249,
    rules = [(
        "self.matches('^[a-zA-Z0-9._-]+$') && self != '.' && self != '..'",
        "must be a Kafka topic name: letters, digits, '.', '_' and '-', at most 249 characters, not '.' or '..'"
    )]
}

string_format! {
    /// A Kafka consumer group id: 1 to 249 characters of letters, digits, `.`, `_` and `-`.
    ConsumerGroup,
    max_length = 249,
    rules = [(
        "self.matches('^[a-zA-Z0-9._-]+$')",
        "must be a consumer group id of letters, digits, '.', '_' and '-'"
    )]
}

string_format! {
    /// A Cassandra identifier (keyspace, table or column): a lower-case letter, then
    /// lower-case letters, digits and `_`, at most 48 characters, so it never needs quoting.
    CqlIdentifier,
    max_length = 48,
    rules = [(
        "self.matches('^[a-z][a-z0-9_]*$')",
        "must be a lower-case Cassandra identifier: a letter, then letters, digits and '_', at most 48 characters"
    )]
}

string_format! {
    /// An HTTP header name, e.g. `X-RapidAPI-Key`.
    HeaderName,
    max_length = 128,
    rules = [(
        "self.matches('^[A-Za-z0-9-]+$')",
        "must be an HTTP header name of letters, digits and '-'"
    )]
}

string_format! {
    /// A Delta table column name that every engine reads without quoting: a lower-case
    /// letter or `_`, then lower-case letters, digits and `_`, at most 128 characters
    /// (Athena and Hive lower-case names, so upper case would not round-trip).
    LakeColumnName,
    max_length = 128,
    rules = [(
        "self.matches('^[a-z_][a-z0-9_]*$')",
        "must be a lower-case column name: a letter or '_', then letters, digits and '_'"
    )]
}

string_format! {
    /// A top-level field of a record, read by a SQL program as a column: 1 to 128
    /// characters, not one of the reserved columns of `records` (`_key`, `_topic`,
    /// `_partition`, `_offset`, `_timestamp`, `_error`) and not starting with `__`
    /// (kept for the runtime's own columns).
    RecordFieldName,
    max_length = 128,
    rules = [(
        "!(self in ['_key', '_topic', '_partition', '_offset', '_timestamp', '_error']) && !self.startsWith('__')",
        "must not be a reserved column (_key, _topic, _partition, _offset, _timestamp, _error) or start with '__'"
    )]
}
