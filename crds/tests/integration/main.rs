//! The API's tests: one binary, with no server: the examples against the validation, the generated schema and its drift, the CEL rules' inputs.

mod examples;
mod schema;
mod validation;
