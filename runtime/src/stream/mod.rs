//! Stream processing between Kafka and Kafka or Cassandra. (Being written: see issue 6.)

pub mod sink;
pub mod transform;
