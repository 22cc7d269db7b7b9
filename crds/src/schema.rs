//! Schema adjustments shared by the API types.

/// Removes the type-level description from an enum's schema.
///
/// kube's rewrite of `Option<Enum>` copies the enum's schema over the field's, and with
/// it the enum's own doc, so `kubectl explain` would show the enum's doc instead of the
/// field's. The field docs list the values and the default; the enum docs stay in
/// rustdoc. Use as `#[schemars(transform = crate::schema::field_describes_enum)]`.
pub(crate) fn field_describes_enum(schema: &mut schemars::Schema) {
    schema.remove("description");
}
