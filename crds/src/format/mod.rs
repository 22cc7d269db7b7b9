//! String formats of the API: newtypes that carry their schema rule (length bound and
//! CEL `x-kubernetes-validations`) and parse into a typed value for the operator.
//!
//! A field whose type is one of these newtypes gets the rule wherever it appears, so a
//! format is stated once. The CEL rule is the quick check at `kubectl apply`; the
//! `parse` method is the full check (what CEL cannot express) and yields the value
//! the operator builds from.

pub mod cron;
pub mod css;
pub mod duration;
pub mod jsonpath;
pub mod location;
pub mod name;
pub mod pattern;
pub mod script;
pub mod url;

/// Declares a `String` newtype whose JSON schema is a bounded string with CEL rules.
///
/// The length bound is not only a sanity limit: the apiserver estimates the cost of
/// every CEL rule from it and refuses a CRD whose rules could run unbounded.
macro_rules! string_format {
    (
        $(#[$doc:meta])*
        $name:ident, max_length = $max:expr, rules = [$(($rule:expr, $message:expr)),* $(,)?]
    ) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The text as the user wrote it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                let rules: Vec<::serde_json::Value> = vec![
                    $(::serde_json::json!({ "rule": $rule, "message": $message })),*
                ];
                let mut schema = ::schemars::json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": $max,
                });
                if !rules.is_empty() {
                    schema.insert("x-kubernetes-validations".into(), rules.into());
                }
                schema
            }
        }
    };
}
pub(crate) use string_format;
