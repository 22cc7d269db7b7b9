//! The valid examples in `manifests/examples/pipeline/` parse into the API types and
//! pass the Rust-side validation, with the typed values the operator will build from.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use homestream_crds::cassandrasink::{ColumnSource, ValidatedReplication};
use homestream_crds::cql::{CqlType, NativeType};
use homestream_crds::deltasink::LakeType;
use homestream_crds::format::cron::Schedule;
use homestream_crds::format::jsonpath::JsonPath;
use homestream_crds::schema_policy::SchemaPolicy;
use homestream_crds::scrapejob::validate::{
    DocumentSource, FieldValue, PageLink, PaginationMode, ValidatedItems, ValidatedSource,
};
use homestream_crds::scrapejob::{ConcurrencyPolicy, Trigger};
use homestream_crds::streamtransform::{Delivery, TransformProgram};
use homestream_crds::topic::OnError;
use homestream_crds::{CassandraSink, DeltaSink, ScrapeJob, StreamTransform};

fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples/pipeline")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn zoopla_browser_scrapejob_reads_cards_from_the_dom() {
    let job: ScrapeJob = example("zoopla-rentals.scrapejob.yaml");
    let valid = job.spec.validate().unwrap();
    let ValidatedSource::Browser(browser) = &valid.source else {
        panic!("expected a browser source")
    };
    assert_eq!(browser.allowed_hosts, ["www.zoopla.co.uk"]);
    assert_eq!(browser.wait_timeout, Duration::from_secs(45));
    assert!(matches!(valid.extract.items, ValidatedItems::Css { .. }));
    let id = &valid.extract.fields[0];
    assert_eq!(id.name, "id");
    assert!(
        matches!(&id.value, FieldValue::Dom { css: None, attribute: Some(attribute) } if attribute == "id")
    );
    let regex = id.regex.as_ref().unwrap();
    assert_eq!(&regex.captures("listing_73093762").unwrap()[1], "73093762");
    let next = valid.next_page.as_ref().unwrap();
    assert!(matches!(&next.link, PageLink::Css(link) if link.attribute == "href"));
    assert_eq!(next.max_pages, NonZeroU32::new(10).unwrap());
    assert_eq!(valid.politeness.backoff_max, Duration::from_secs(60));
    assert_eq!(valid.run_timeout, Duration::from_secs(1800));
    let Trigger::Scheduled {
        parsed: Schedule::Fields(fields),
        time_zone,
        concurrency_policy,
        ..
    } = &valid.trigger
    else {
        panic!("expected a schedule")
    };
    assert_eq!(fields.hours, 1 << 7 | 1 << 19);
    assert_eq!(time_zone.as_ref().unwrap().as_str(), "Europe/London");
    assert_eq!(*concurrency_policy, ConcurrencyPolicy::Forbid);
}

#[test]
fn rightmove_http_scrapejob_reads_next_data_json() {
    let job: ScrapeJob = example("rightmove-rentals.scrapejob.yaml");
    let valid = job.spec.validate().unwrap();
    let ValidatedSource::Http(http) = &valid.source else {
        panic!("expected an http source")
    };
    let pagination = http.pagination.as_ref().unwrap();
    assert!(matches!(
        pagination.mode,
        PaginationMode::OffsetLimit { start: 0, .. }
    ));
    let url = http.url.render(|_| "48".to_owned());
    assert!(url.ends_with("&index=48"), "{url}");
    let ValidatedItems::Json { document, path } = &valid.extract.items else {
        panic!("expected JSON items")
    };
    assert!(matches!(
        valid.extract.document(document).unwrap().source,
        DocumentSource::Script(_)
    ));
    let page = serde_json::json!({"props": {"pageProps": {"searchResults": {"properties": [{"id": 88014666}]}}}});
    assert_eq!(
        path.query(&page).all(),
        [&serde_json::json!({"id": 88014666})]
    );
}

#[test]
fn realtor_http_scrapejob_pages_a_rest_api_with_a_secret_key() {
    let job: ScrapeJob = example("realtor-rentals.scrapejob.yaml");
    let valid = job.spec.validate().unwrap();
    let ValidatedSource::Http(http) = &valid.source else {
        panic!("expected an http source")
    };
    let key = http
        .headers
        .iter()
        .find(|header| header.name.as_str() == "X-RapidAPI-Key")
        .unwrap();
    assert_eq!(
        key.value_from.as_ref().unwrap().secret_key_ref.name,
        "realtor-api"
    );
    let body = http
        .body
        .as_ref()
        .unwrap()
        .render(|placeholder| placeholder.name().len().to_string());
    assert!(body.starts_with(r#"{"limit": 5, "offset": 6,"#), "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("the rendered body is JSON");
    assert_eq!(body["status"][0], "for_rent");
    let PaginationMode::OffsetLimit {
        limit,
        total_path: Some(total),
        ..
    } = &http.pagination.as_ref().unwrap().mode
    else {
        panic!("expected offset/limit paging with a total")
    };
    assert_eq!(limit.get(), 50);
    let response = serde_json::json!({"data": {"home_search": {"total": 79}}});
    assert_eq!(total.query(&response).all(), [&serde_json::json!(79)]);
    let ValidatedItems::Json { document, .. } = &valid.extract.items else {
        panic!("expected JSON items")
    };
    assert_eq!(
        valid.extract.document(document).unwrap().source,
        DocumentSource::Body
    );
}

#[test]
fn streamtransform_defaults_and_dead_letter() {
    let transform: StreamTransform = example("normalise-listings.streamtransform.yaml");
    let valid = transform.spec.validate().unwrap();
    assert_eq!(valid.on_error, OnError::DeadLetter);
    assert_eq!(valid.delivery, Delivery::ExactlyOnce);
    assert_eq!(valid.replicas.get(), 2);
    assert_eq!(
        valid.dead_letter.unwrap().name.as_str(),
        "listings.normalised.dead-letter"
    );
    let TransformProgram::Vrl(source) = valid.program else {
        panic!("the example runs the VRL cleaning program")
    };
    assert!(source.contains("52.0 / 12.0"));
}

#[test]
fn cassandrasinks_parse_their_tables() {
    let sink: CassandraSink = example("listings.cassandrasink.yaml");
    let valid = sink.spec.validate().unwrap();
    assert_eq!(valid.replication, ValidatedReplication::Simple(1));
    assert_eq!(valid.partition_key, ["source", "listing_id"]);
    let price = valid
        .columns
        .iter()
        .find(|column| column.name == "monthly_price_minor")
        .unwrap();
    assert_eq!(price.cql_type, CqlType::Native(NativeType::Bigint));
    assert_eq!(
        price.source,
        ColumnSource::Field("monthly_price_minor".to_owned())
    );

    let history: CassandraSink = example("listing-prices.cassandrasink.yaml");
    let valid = history.spec.validate().unwrap();
    assert_eq!(valid.default_time_to_live, Some(8760 * 3600));
    assert_eq!(valid.clustering_key.len(), 1);
    let label = valid
        .columns
        .iter()
        .find(|column| column.name == "label")
        .unwrap();
    assert_eq!(label.source, ColumnSource::Field("price_label".to_owned()));
    assert_eq!(valid.on_error, OnError::Drop);
}

#[test]
fn the_deltasink_partitions_by_the_date_of_the_scrape() {
    let sink: DeltaSink = example("listings-lake.deltasink.yaml");
    let valid = sink.spec.validate().unwrap();
    assert_eq!(
        valid.location.bucket_and_prefix(),
        ("homestream", "lake/listings")
    );
    assert_eq!(valid.partition_by, ["scraped_date"]);
    assert_eq!(valid.schema_policy, SchemaPolicy::AddColumns);
    let date = valid.columns.last().unwrap();
    assert_eq!(date.name, "scraped_date");
    assert_eq!(date.lake_type, LakeType::Date);
    assert_eq!(
        date.source,
        ColumnSource::JsonPath(JsonPath::from("$.scraped_at").parse().unwrap())
    );
    assert!(date.required, "a partition column is always required");
    let price = valid
        .columns
        .iter()
        .find(|column| column.name == "monthly_price_minor")
        .unwrap();
    assert_eq!(price.lake_type, LakeType::Long);
    assert_eq!(valid.flush.interval, Duration::from_secs(15));
    assert_eq!(
        valid.vacuum.unwrap().retention,
        Duration::from_secs(168 * 3600)
    );
    assert_eq!(valid.on_error, OnError::DeadLetter);
    assert_eq!(valid.replicas.get(), 2);
}
