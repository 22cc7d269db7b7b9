//! Delta tables as DeltaSinks declare them: created where missing, declared columns
//! added under `AddColumns`, and every change that would lose or reinterpret data (a
//! removed column, a new type, other partition columns) refused in status, never
//! applied; the operator's own S3 key; and storage failures sorted into what the user
//! can act on.

pub mod credentials;
pub mod diff;
pub mod failure;
pub mod message;
pub mod table;
