//! Kafka client plumbing every homestream process shares: connection settings and
//! security ([`connection`]), the components' consumer and producer defaults
//! ([`clients`]), and the client errors that stop a component ([`refusal`]).

pub mod clients;
pub mod connection;
pub mod refusal;

pub use clients::{
    commit_stored, consumer_config, group_id, instance_name, producer_config, record_lag,
};
pub use connection::{ConnectionError, SaslLogin, client_config, secure};
pub use refusal::{RefusalContext, RefusedConnection, certificate_refused};
