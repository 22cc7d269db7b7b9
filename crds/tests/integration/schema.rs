//! Schema quality of the generated CRDs: documented fields (what `kubectl explain`
//! shows), no schema defaults, a message on every CEL rule, and the names, columns and
//! subresources users rely on.

use homestream_crds::generate;
use serde_json::Value;

fn walk(path: &str, schema: &Value, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, schema);
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            walk(&format!("{path}.{name}"), property, visit);
        }
    }
    if schema["items"].is_object() {
        walk(&format!("{path}[]"), &schema["items"], visit);
    }
    if schema["additionalProperties"].is_object() {
        walk(
            &format!("{path}{{}}"),
            &schema["additionalProperties"],
            visit,
        );
    }
}

fn schemas() -> Vec<(String, Value)> {
    generate::crds()
        .into_iter()
        .map(|(_, crd)| {
            let name = crd.metadata.name.clone().unwrap();
            let schema = crd.spec.versions[0]
                .schema
                .clone()
                .unwrap()
                .open_api_v3_schema
                .unwrap();
            (name, serde_json::to_value(schema).unwrap())
        })
        .collect()
}

#[test]
fn every_field_has_a_description() {
    for (crd, schema) in schemas() {
        let mut undocumented = Vec::new();
        walk("", &schema, &mut |path, field| {
            let is_property = !path.is_empty() && !path.ends_with("[]") && !path.ends_with('}');
            let documented = field["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty());
            if is_property
                && !documented
                && !path.starts_with(".metadata")
                && path != ".apiVersion"
                && path != ".kind"
            {
                undocumented.push(path.to_owned());
            }
        });
        assert!(
            undocumented.is_empty(),
            "{crd}: fields without a description: {undocumented:?}"
        );
    }
}

#[test]
fn no_schema_defaults_and_every_rule_has_a_message() {
    for (crd, schema) in schemas() {
        walk("", &schema, &mut |path, field| {
            assert!(
                field.get("default").is_none(),
                "{crd}{path} has a schema default"
            );
            for rule in field["x-kubernetes-validations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert!(
                    rule["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{crd}{path}: rule without a message: {rule}"
                );
            }
        });
    }
}

#[test]
fn descriptions_are_unwrapped_for_kubectl_explain() {
    for (crd, schema) in schemas() {
        walk("", &schema, &mut |path, field| {
            if let Some(description) = field["description"].as_str() {
                assert!(
                    !description.replace("\n\n", "").contains('\n'),
                    "{crd}{path}: {description:?}"
                );
            }
        });
    }
}

#[test]
fn names_columns_and_subresources() {
    let expected = [
        ("scrapejobs.homestream.io", &["sj"][..]),
        ("streamtransforms.homestream.io", &["st"][..]),
        ("cassandrasinks.homestream.io", &["cs", "csink"][..]),
        ("deltasinks.homestream.io", &["dsink"][..]),
    ];
    assert_eq!(
        generate::crds().len(),
        expected.len(),
        "a kind without its row"
    );
    for ((_, crd), (name, short)) in generate::crds().into_iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&short.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
        );
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["homestream".to_owned()])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: no status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns.first(), Some(&"Ready"), "{name}: {columns:?}");
        assert_eq!(columns.last(), Some(&"Age"), "{name}: {columns:?}");
        assert!(
            columns.len() >= 4,
            "{name}: a kind-specific column is missing: {columns:?}"
        );
    }
}
