//! The SQL front end on records in memory: planning diagnostics, the output conventions
//! (`_key`, `_error`, filtered rows, fan-out), and failures kept to their records.

use homestream_crds::deltasink::LakeType;
use homestream_crds::streamtransform::ValidatedSql;
use serde_json::{Value, json};

use super::SqlProgram;
use crate::program::{Diagnostic, Input, Origin, Outcome};

fn sql(query: &str, columns: &[(&str, &str)]) -> ValidatedSql {
    ValidatedSql {
        query: query.to_owned(),
        columns: columns
            .iter()
            .map(|(name, sql_type)| ((*name).to_owned(), LakeType::parse(sql_type).unwrap()))
            .collect(),
    }
}

fn plan(query: &str, columns: &[(&str, &str)]) -> SqlProgram {
    SqlProgram::plan(&sql(query, columns)).unwrap_or_else(|diagnostics| panic!("{diagnostics:#?}"))
}

fn refused(query: &str, columns: &[(&str, &str)]) -> Vec<Diagnostic> {
    SqlProgram::plan(&sql(query, columns)).expect_err(query)
}

fn origin(offset: i64) -> Origin<'static> {
    Origin {
        key: Some(b"in-key"),
        topic: "in",
        partition: 3,
        offset,
        timestamp: Some(1_700_000_000_000),
    }
}

fn run(program: &SqlProgram, payloads: &[&str]) -> Vec<Outcome> {
    let inputs: Vec<Input<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(index, payload)| (payload.as_bytes(), origin(index as i64)))
        .collect();
    program.runner().run(&inputs)
}

/// Each outcome as `records: [[key, value]...]`, `failed: reason` or `aborted: reason`.
fn shown(outcomes: Vec<Outcome>) -> Vec<Value> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Records(records) => Value::Array(
                records
                    .into_iter()
                    .map(|record| {
                        json!([
                            record.key.map(|key| String::from_utf8(key).unwrap()),
                            serde_json::from_slice::<Value>(&record.value).unwrap()
                        ])
                    })
                    .collect(),
            ),
            Outcome::Failed(reason) => json!({"failed": reason}),
            Outcome::Aborted(reason) => json!({"aborted": reason}),
        })
        .collect()
}

#[test]
fn rows_map_records_with_their_key_and_nulls() {
    let program = plan(
        "SELECT upper(city) AS city, beds + 1 AS rooms, \"listingId\" FROM records",
        &[
            ("city", "string"),
            ("beds", "long"),
            ("listingId", "string"),
        ],
    );
    let outcomes = shown(run(
        &program,
        &[
            r#"{"city": "leeds", "beds": 2, "listingId": "a1", "ignored": true}"#,
            r#"{"city": null, "beds": 1}"#,
        ],
    ));
    assert_eq!(
        outcomes,
        [
            json!([["in-key", {"city": "LEEDS", "rooms": 3, "listingId": "a1"}]]),
            json!([["in-key", {"city": null, "rooms": 2, "listingId": null}]]),
        ]
    );
}

#[test]
fn key_and_error_columns_route_the_output() {
    let program = plan(
        "SELECT 'listing:' || id AS _key, id, \
         CASE WHEN price IS NULL THEN 'no price' END AS _error FROM records",
        &[("id", "string"), ("price", "double")],
    );
    let outcomes = shown(run(
        &program,
        &[r#"{"id": "7", "price": 1.5}"#, r#"{"id": "8"}"#],
    ));
    assert_eq!(
        outcomes,
        [
            json!([["listing:7", {"id": "7"}]]),
            json!({"failed": "no price"})
        ]
    );
}

#[test]
fn origin_columns_are_readable_but_never_reach_the_value() {
    let program = plan(
        "SELECT *, _topic || '/' || CAST(_partition AS VARCHAR) || '/' || CAST(_offset AS VARCHAR) AS at, \
         CAST(_timestamp AS BIGINT) AS ts, _key AS source_key FROM records",
        &[("id", "long")],
    );
    let outcomes = shown(run(&program, &[r#"{"id": 1}"#]));
    assert_eq!(
        outcomes,
        [
            json!([["in-key", {"id": 1, "at": "in/3/0", "ts": 1_700_000_000_000_i64, "source_key": "in-key"}]])
        ]
    );
}

#[test]
fn a_key_passed_on_keeps_its_bytes() {
    let program = plan("SELECT * FROM records", &[("id", "long")]);
    let key = [0xff_u8, b'k'];
    let origin = Origin {
        key: Some(&key),
        ..origin(0)
    };
    let Outcome::Records(records) = program.runner().run(&[(br#"{"id": 1}"#, origin)]).remove(0)
    else {
        panic!()
    };
    assert_eq!(records[0].key.as_deref(), Some(&key[..]));
    assert_eq!(records[0].value, br#"{"id":1}"#);
}

#[test]
fn where_drops_and_unnest_fans_out() {
    let program = plan(
        "SELECT unnest(tags) AS tag FROM records WHERE cardinality(tags) > 0",
        &[("tags", "array<string>")],
    );
    let outcomes = shown(run(
        &program,
        &[r#"{"tags": ["a", "b"]}"#, r#"{"tags": []}"#],
    ));
    assert_eq!(
        outcomes[0],
        json!([["in-key", {"tag": "a"}], ["in-key", {"tag": "b"}]])
    );
    assert_eq!(
        outcomes[1],
        json!({"aborted": "the query left no row of it"})
    );
}

#[test]
fn stages_carry_each_record_through() {
    let program = plan(
        "WITH cleaned AS (SELECT trim(name) AS name FROM records) \
         SELECT upper(name) AS name FROM (SELECT name FROM cleaned WHERE name <> '') AS named",
        &[("name", "string")],
    );
    let outcomes = shown(run(
        &program,
        &[
            r#"{"name": " a "}"#,
            r#"{"name": "  "}"#,
            r#"{"name": "b"}"#,
        ],
    ));
    assert_eq!(outcomes[0], json!([["in-key", {"name": "A"}]]));
    assert_eq!(
        outcomes[1],
        json!({"aborted": "the query left no row of it"})
    );
    assert_eq!(outcomes[2], json!([["in-key", {"name": "B"}]]));
}

#[test]
fn bad_payloads_and_failing_rows_fail_alone() {
    let program = plan(
        "SELECT CAST(n AS INT) AS n, nested['x'] AS x FROM records",
        &[("n", "string"), ("nested", "struct<x:long>")],
    );
    let outcomes = shown(run(
        &program,
        &[
            r#"{"n": "1", "nested": {"x": 5}}"#,
            "not json",
            r#"{"n": "two"}"#,
            r#"{"n": 3, "nested": "not an object"}"#,
            r#"[1, 2]"#,
            r#"{"n": "4"}"#,
        ],
    ));
    assert_eq!(outcomes[0], json!([["in-key", {"n": 1, "x": 5}]]));
    assert_eq!(outcomes[5], json!([["in-key", {"n": 4, "x": null}]]));
    for (index, expected) in [
        (1, "payload does not decode"),
        (2, "the query failed on this record"),
        (3, "payload does not decode"),
        (4, "payload does not decode"),
    ] {
        let reason = outcomes[index]["failed"]
            .as_str()
            .unwrap_or_else(|| panic!("{index}: {}", outcomes[index]));
        assert!(reason.starts_with(expected), "{index}: {reason}");
    }
}

#[test]
fn diagnostics_carry_line_and_column() {
    let columns = [("id", "string"), ("price", "double")];
    let at = |query: &str| {
        let diagnostics = refused(query, &columns);
        (
            diagnostics[0].line,
            diagnostics[0].column,
            diagnostics[0].message.clone(),
        )
    };
    let (line, column, message) = at("SELECT id,\n  nope FROM records");
    assert_eq!((line, column), (2, 3), "{message}");
    let (line, column, message) = at("SELECT id FROM records\nWHERE price >");
    assert_eq!(line, 2, "{message}");
    assert!(column > 1, "{message}");
    let (line, column, message) = at("SELECT id FROM records\nORDER BY id");
    assert_eq!((line, column), (2, 10), "{message}");
    assert!(message.starts_with("ORDER BY is not allowed"), "{message}");
    let (line, column, message) = at("SELECT count(*) AS n\nFROM records");
    assert_eq!((line, column), (1, 8), "{message}");
    assert!(message.contains("aggregate function count"), "{message}");
    let (_, _, message) = at("SELECT id, now() AS at FROM records");
    assert!(message.contains("_timestamp"), "{message}");
    let (_, _, message) = at("SELECT id FROM listings");
    assert!(
        message.starts_with("unknown relation listings"),
        "{message}"
    );
    let (_, _, message) = at("SELECT a.id FROM records a JOIN records b ON a.id = b.id");
    assert!(message.starts_with("a join is not allowed"), "{message}");
    let (_, _, message) = at("SELECT id FROM records UNION ALL SELECT id FROM records");
    assert!(message.contains("UNION"), "{message}");
    let (_, _, message) = at("SELECT id, price AS _key FROM records");
    assert!(
        message.contains("the key must be text or bytes"),
        "{message}"
    );
    let (_, _, message) = at("DROP TABLE records");
    assert!(message.contains("only a SELECT"), "{message}");
    let (_, _, message) = at("SELECT id FROM records WHERE id IN (SELECT id FROM records)");
    assert!(message.contains("subquery"), "{message}");
}

#[test]
fn the_hash_covers_the_query_and_the_columns() {
    let a = plan("SELECT id FROM records", &[("id", "string")]);
    let b = plan("SELECT id FROM records", &[("id", "long")]);
    assert_ne!(a.hash(), b.hash());
    assert_eq!(a.hash().len(), 64);
}
