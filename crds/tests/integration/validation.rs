//! The Rust-side validation: what CEL cannot check at `kubectl apply`, with the
//! messages users see in status. Each case starts from a valid example and breaks one
//! thing.

use std::path::Path;

use homestream_crds::{
    CassandraSinkSpec, DeltaSinkSpec, InvalidSpec, ScrapeJobSpec, StreamTransformSpec,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The spec of an example, changed by `edit` (which gets the spec as JSON).
fn spec<T: DeserializeOwned>(file: &str, edit: impl FnOnce(&mut Value)) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples/pipeline")
        .join(file);
    let mut resource: Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut resource["spec"]);
    serde_json::from_value(resource["spec"].take()).unwrap()
}

fn assert_refused(result: Result<impl std::fmt::Debug, InvalidSpec>, expected: &[&str]) {
    let error = result.expect_err("expected the spec to be refused");
    let messages: Vec<String> = error.0.iter().map(ToString::to_string).collect();
    assert_eq!(messages, expected, "all: {error}");
}

fn zoopla(edit: impl FnOnce(&mut Value)) -> Result<impl std::fmt::Debug, InvalidSpec> {
    spec::<ScrapeJobSpec>("zoopla-rentals.scrapejob.yaml", edit).validate()
}

fn realtor(edit: impl FnOnce(&mut Value)) -> Result<impl std::fmt::Debug, InvalidSpec> {
    spec::<ScrapeJobSpec>("realtor-rentals.scrapejob.yaml", edit).validate()
}

fn sink(edit: impl FnOnce(&mut Value)) -> Result<impl std::fmt::Debug, InvalidSpec> {
    spec::<CassandraSinkSpec>("listing-prices.cassandrasink.yaml", edit).validate()
}

fn lake(edit: impl FnOnce(&mut Value)) -> Result<impl std::fmt::Debug, InvalidSpec> {
    spec::<DeltaSinkSpec>("listings-lake.deltasink.yaml", edit).validate()
}

#[test]
fn css_selectors_must_parse() {
    let error = zoopla(|s| s["extract"]["items"]["css"] = json!("div[id^=] > a")).unwrap_err();
    assert_eq!(error.0.len(), 1);
    assert!(
        error.0[0]
            .to_string()
            .starts_with("spec.extract.items.css: invalid CSS selector: "),
        "{error}"
    );
    let error = zoopla(|s| s["source"]["browser"]["waitFor"]["selector"] = json!("[data-testid="))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("spec.source.browser.waitFor.selector: invalid CSS selector"),
        "{error}"
    );
}

#[test]
fn regexes_must_compile() {
    assert_refused(
        zoopla(|s| s["extract"]["fields"][3]["regex"] = json!(r"(\d+ bed")),
        &["spec.extract.fields[beds].regex: invalid regular expression: unclosed group"],
    );
}

#[test]
fn cron_fields_must_be_in_range() {
    assert_refused(
        zoopla(|s| s["schedule"] = json!("0 7,25 * * *")),
        &["spec.schedule: hour field: 25 is outside 0-23"],
    );
    assert_refused(
        zoopla(|s| s["schedule"] = json!("0 7 * * mon-fry")),
        &["spec.schedule: day-of-week field: \"fry\" is not a number or name"],
    );
}

#[test]
fn durations_must_be_within_bounds() {
    assert_refused(
        zoopla(|s| s["source"]["browser"]["waitFor"]["timeout"] = json!("10m")),
        &["spec.source.browser.waitFor.timeout: must be between 1s and 5m"],
    );
    assert_refused(
        zoopla(|s| s["politeness"]["backoff"] = json!({"initial": "30s", "max": "10s"})),
        &["spec.politeness.backoff: initial must not exceed max"],
    );
}

#[test]
fn start_urls_must_be_on_allowed_hosts() {
    assert_refused(
        zoopla(|s| {
            s["source"]["browser"]["startUrls"] = json!([
                "https://www.zoopla.co.uk/a",
                "https://www.rightmove.co.uk/b"
            ])
        }),
        &[
            "spec.source.browser.startUrls[1]: host www.rightmove.co.uk is not in allowedHosts, so the page could not load",
        ],
    );
    zoopla(|s| s["source"]["browser"]["allowedHosts"] = json!(["*.zoopla.co.uk"]))
        .expect("a wildcard covers subdomains");
}

#[test]
fn pagination_placeholders_must_match_the_mode() {
    assert_refused(
        realtor(|s| {
            s["source"]["http"]["body"] = json!(r#"{"page": {{page}}, "offset": {{offset}}}"#)
        }),
        &["spec.source.http: {{page}} is used but no pagination mode fills it in"],
    );
    assert_refused(
        realtor(|s| s["source"]["http"]["body"] = json!(r#"{"limit": {{limit}}}"#)),
        &[
            "spec.source.http.pagination: url or body must use {{offset}}, or every request would fetch the same page",
        ],
    );
    assert_refused(
        realtor(|s| {
            s["source"]["http"]["url"] =
                json!("https://realty-in-us.p.rapidapi.com/properties/v3/list?p={{pg}}")
        }),
        &[
            "spec.source.http.url: unknown placeholder {{pg}} (use {{offset}}, {{limit}}, {{page}} or {{cursor}})",
        ],
    );
}

#[test]
fn json_paths_must_parse() {
    let error = realtor(|s| {
        s["source"]["http"]["pagination"]["offsetLimit"]["totalPath"] =
            json!("$.data.home_search[total");
        s["extract"]["fields"][2]["jsonPath"] = json!("$.list_price[?@ >]");
    })
    .unwrap_err();
    let paths: Vec<&str> = error.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.source.http.pagination.offsetLimit.totalPath",
            "spec.extract.fields[price].jsonPath"
        ]
    );
    assert!(
        error
            .0
            .iter()
            .all(|e| e.message.starts_with("invalid JSONPath: ")),
        "{error}"
    );
}

#[test]
fn topic_config_keys_must_look_like_kafka_configs() {
    assert_refused(
        realtor(|s| {
            s["output"]["topic"]["config"] = json!({"Retention_MS": "1", "cleanup.policy": " "})
        }),
        &[
            "spec.output.topic.config[Retention_MS]: is not a Kafka topic config name (lower-case words joined by '.', e.g. retention.ms)",
            "spec.output.topic.config[cleanup.policy]: value must not be empty",
        ],
    );
}

#[test]
fn cql_types_must_parse() {
    assert_refused(
        sink(|s| s["table"]["columns"][3]["type"] = json!("long")),
        &[
            "spec.table.columns[monthly_price_minor].type: invalid CQL type \"long\": unknown type \"long\"",
        ],
    );
    assert_refused(
        sink(|s| s["table"]["columns"][3]["type"] = json!("counter")),
        &[
            "spec.table.columns[monthly_price_minor].type: invalid CQL type \"counter\": counter columns are not supported: counter updates are not idempotent",
        ],
    );
}

#[test]
fn key_columns_must_be_scalars_or_frozen() {
    assert_refused(
        sink(|s| s["table"]["columns"][0]["type"] = json!("set<text>")),
        &[
            "spec.table.partitionKey: column source is a set<text>: a key column must be a scalar or frozen collection",
        ],
    );
    assert_refused(
        sink(|s| s["table"]["columns"][2]["type"] = json!("duration")),
        &[
            "spec.table.clusteringKey: column scraped_at is a duration, which Cassandra does not allow in a primary key",
        ],
    );
    sink(|s| s["table"]["columns"][0]["type"] = json!("frozen<set<text>>"))
        .expect("a frozen collection can be a key");
}

#[test]
fn ttl_must_be_whole_seconds() {
    assert_refused(
        sink(|s| s["table"]["options"]["defaultTimeToLive"] = json!("1.5s")),
        &["spec.table.options.defaultTimeToLive: must be whole seconds"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let error = spec::<StreamTransformSpec>("normalise-listings.streamtransform.yaml", |s| {
        s["replicas"] = json!(8);
        s["deadLetter"]["topic"]["config"] = json!({"retention ms": "1"});
    })
    .validate()
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "spec.deadLetter.topic.config[retention ms]: is not a Kafka topic config name (lower-case words joined by '.', e.g. retention.ms); \
         spec.replicas: 8 exceeds input.partitions (6)"
    );
}

#[test]
fn batch_rows_default_to_ten_and_never_exceed_it() {
    let rows = |edit: fn(&mut Value)| {
        spec::<CassandraSinkSpec>("listings.cassandrasink.yaml", edit)
            .validate()
            .unwrap()
            .batch_rows
            .get()
    };
    assert_eq!(rows(|_| {}), 10);
    assert_eq!(rows(|spec| spec["batchRows"] = json!(1)), 1);
    // The schema refuses more at `kubectl apply`; a resource written around it still
    // never batches past Cassandra's default warning threshold.
    assert_eq!(rows(|spec| spec["batchRows"] = json!(50)), 10);
}

#[test]
fn lake_types_must_parse() {
    assert_refused(
        lake(|s| s["table"]["columns"][6]["type"] = json!("bigdecimal")),
        &[
            "spec.table.columns[monthly_price_minor].type: unknown type \"bigdecimal\": expected string, long, int, double, float, boolean, timestamp, date, decimal(p,s), array<...>, map<string,...> or struct<...>",
        ],
    );
    assert_refused(
        lake(|s| s["table"]["columns"][6]["type"] = json!("decimal(40,2)")),
        &[
            "spec.table.columns[monthly_price_minor].type: decimal precision must be between 1 and 38, not 40",
        ],
    );
    lake(|s| s["table"]["columns"][6]["type"] = json!("map<string, array<int>>"))
        .expect("nested types parse");
}

#[test]
fn partition_columns_must_be_scalars() {
    assert_refused(
        lake(|s| {
            s["table"]["columns"][13]["type"] = json!("array<string>");
        }),
        &[
            "spec.table.partitionBy: column scraped_date is a array<string>: a partition column must be a scalar",
        ],
    );
}

#[test]
fn flush_and_vacuum_durations_must_be_within_bounds() {
    assert_refused(
        lake(|s| {
            s["flush"]["interval"] = json!("2h");
            s["vacuum"]["retention"] = json!("30m");
        }),
        &[
            "spec.flush.interval: must be between 1s and 1h",
            "spec.vacuum.retention: must be between 1h and 8760h",
        ],
    );
}
