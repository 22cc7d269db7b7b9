//! DeltaSinks against the local stack's apiserver, Kafka and S3 server (versitygw):
//! the real operator binary, started with the stack's S3 as its default and its own key
//! in files (`Lake::operator_env`), creates the table at the declared location (read back here as engines
//! read it, through its Delta log), adds columns only under `AddColumns`, refuses
//! removed columns and changed types in status, reports a missing bucket and a refused
//! key, and `deletionPolicy: Delete` deletes only a table it created.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use deltalake::arrow::array::{Date32Array, Int64Array, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::logstore::object_store::{ObjectStoreExt, PutPayload};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, Path};
use futures::TryStreamExt;
use homestream_common::lake::{self, S3Key};
use homestream_crds::DeltaSink;
use homestream_crds::format::location::S3Location;
use homestream_crds::runtime::ResolvedS3;
use homestream_tests::lake::Lake;
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::{self, CONVERGE, Operator, apply, wait_condition};

/// Flags that give the operator another key of its own (`id`, `secret`), in files
/// under a fresh directory, as the chart mounts them.
fn admin_key_flags(id: &str, secret: &str) -> Result<Vec<String>> {
    let dir = std::env::temp_dir().join(random_name("operator-s3-key"));
    std::fs::create_dir_all(&dir)?;
    let files: [PathBuf; 2] = [dir.join("access-key-id"), dir.join("secret-access-key")];
    std::fs::write(&files[0], id)?;
    std::fs::write(&files[1], secret)?;
    Ok(vec![
        format!("--s3-admin-access-key-id-file={}", files[0].display()),
        format!("--s3-admin-secret-access-key-file={}", files[1].display()),
    ])
}

/// The storage options of the stack's S3 with its root key.
fn options(lake: &Lake) -> HashMap<String, String> {
    let s3 = ResolvedS3 {
        endpoint: Some(lake.endpoint.clone()),
        region: Some(lake.region.clone()),
        path_style: true,
        authenticated: true,
    };
    let key = S3Key {
        access_key_id: lake.access_key_id.clone(),
        secret_access_key: lake.secret_access_key.clone(),
    };
    lake::storage_options(&s3, Some(&key))
}

/// The table at `location`, if there is one.
async fn table(lake: &Lake, location: &str) -> Result<Option<DeltaTable>> {
    Ok(lake::open(&S3Location::from(location), options(lake)).await?)
}

/// The column names of the table at `location` and its partition columns.
async fn schema(lake: &Lake, location: &str) -> Result<(Vec<String>, Vec<String>)> {
    let table = table(lake, location)
        .await?
        .with_context(|| format!("no table at {location}"))?;
    let snapshot = table.snapshot()?;
    let columns = snapshot
        .schema()
        .fields()
        .map(|field| field.name().clone())
        .collect();
    Ok((columns, snapshot.metadata().partition_columns().to_vec()))
}

/// The objects under `location`.
async fn objects(lake: &Lake, location: &str) -> Result<Vec<Path>> {
    let store = lake::unloaded(&S3Location::from(location), options(lake))?.object_store();
    Ok(store
        .list(None)
        .map_ok(|object| object.location)
        .try_collect()
        .await?)
}

/// Appends three rows over two scrape dates to the table at `location`, as a sink
/// would (two files, one per date folder).
async fn append_rows(lake: &Lake, location: &str) -> Result<()> {
    let mut table = table(lake, location).await?.context("no table")?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("listing_id", DataType::Utf8, true),
        Field::new("price", DataType::Int64, true),
        Field::new("scraped_date", DataType::Date32, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
            Arc::new(Int64Array::from(vec![230_000, 195_000, 310_000])),
            // 2024-10-04 and 2024-10-05, in days since the epoch.
            Arc::new(Date32Array::from(vec![20_000, 20_000, 20_001])),
        ],
    )?;
    let mut writer = RecordBatchWriter::for_table(&table)?;
    writer.write(batch).await?;
    writer.flush_and_commit(&mut table).await?;
    Ok(())
}

/// Deletes what a test left under `location`.
async fn remove(lake: &Lake, location: &str) -> Result<()> {
    let store = lake::unloaded(&S3Location::from(location), options(lake))?.object_store();
    for object in objects(lake, location).await? {
        store.delete(&object).await?;
    }
    Ok(())
}

/// A DeltaSink `name` reading `input` into `location` under `policy`: a string id, a
/// price and a date partition, plus `extra` columns; its pods select no node (the
/// table is what these tests are about).
fn sink(
    name: &str,
    input: &str,
    location: &str,
    policy: &str,
    extra: &[serde_json::Value],
) -> Result<DeltaSink> {
    let mut columns = vec![
        json!({ "name": "listing_id", "type": "string" }),
        json!({ "name": "price", "type": "long" }),
        json!({ "name": "scraped_date", "type": "date", "jsonPath": "$.scraped_at" }),
    ];
    columns.extend(extra.iter().cloned());
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "DeltaSink",
        "metadata": { "name": name },
        "spec": {
            "input": { "topic": input },
            "table": { "location": location, "columns": columns, "partitionBy": ["scraped_date"] },
            "schemaPolicy": policy,
            "template": { "nodeSelector": { "homestream.io/test": "no-such-node" } }
        }
    }))?)
}

/// Proves: `Create` makes the table with the declared columns and partition column,
/// recorded as the operator's (status: version 0, no files, no rows, a commit time;
/// after a commit of three rows in two date folders, version 1, 3 rows, 2 files),
/// and never alters it (a new
/// column is `ColumnsMissing`); `AddColumns` adds it (version 1); a removed column and
/// a changed type are refused naming the column (and both types), the table unchanged;
/// a bucket that does not exist is `BucketNotFound`; and `Retain` keeps the table.
#[tokio::test]
async fn delta_sink_creates_adds_and_refuses_table_changes() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let lake = env.lake.clone();
    let location = lake.location("ds-schema");
    let (lake_ref, location_ref) = (&lake, location.as_str());
    let outcome = kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let input = random_name("ds-in");
        kafka::create_topic(&env, &input, 1).await?;
        let sinks: Api<DeltaSink> = Api::namespaced(client.clone(), &ns);
        apply(&sinks, &sink("rows", &input, location_ref, "Create", &[])?).await?;
        wait_condition(&sinks, "rows", "TableReady", "True", "TableReady").await?;
        // The record says the operator made it (the condition may already say
        // "matches the spec": the record's write wakes another reconcile).
        let recorded = sinks
            .get("rows")
            .await?
            .annotations()
            .get("homestream.io/created-tables")
            .cloned();
        assert_eq!(recorded.as_deref(), Some(location_ref));
        assert_eq!(
            schema(lake_ref, location_ref).await?,
            (
                vec!["listing_id".into(), "price".into(), "scraped_date".into()],
                vec!["scraped_date".into()]
            )
        );
        let status = wait::until("the table in status", CONVERGE, || async {
            let status = sinks.get("rows").await?.status.unwrap_or_default();
            Ok(match status.table_version {
                Some(_) => Ok(status),
                None => Err("no tableVersion yet".to_owned()),
            })
        })
        .await?;
        assert_eq!(
            (status.table_version, status.files, status.rows),
            (Some(0), Some(0), Some(0))
        );
        let committed = status.last_commit_time.context("no lastCommitTime")?;
        ensure!(
            committed.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
            "not RFC 3339: {committed}"
        );

        // What a sink commits shows in status: its version, rows and files.
        append_rows(lake_ref, location_ref).await?;
        wait::until("the appended rows in status", CONVERGE, || async {
            let status = sinks.get("rows").await?.status.unwrap_or_default();
            Ok(match (status.table_version, status.rows, status.files) {
                (Some(1), Some(3), Some(2)) => Ok(()),
                other => Err(format!("version, rows, files: {other:?}")),
            })
        })
        .await?;

        // Create never alters: a new column is reported, not added.
        let postcode = [json!({ "name": "postcode", "type": "string" })];
        apply(
            &sinks,
            &sink("rows", &input, location_ref, "Create", &postcode)?,
        )
        .await?;
        let missing =
            wait_condition(&sinks, "rows", "TableReady", "False", "ColumnsMissing").await?;
        ensure!(missing.message.contains("postcode"), "{}", missing.message);
        // AddColumns adds it.
        apply(
            &sinks,
            &sink("rows", &input, location_ref, "AddColumns", &postcode)?,
        )
        .await?;
        let added = wait_condition(&sinks, "rows", "TableReady", "True", "TableReady").await?;
        ensure!(
            added.message.ends_with("added columns postcode")
                || added.message.ends_with("matches the spec"),
            "{}",
            added.message
        );
        assert_eq!(
            schema(lake_ref, location_ref).await?.0,
            ["listing_id", "price", "scraped_date", "postcode"]
        );
        let version = table(lake_ref, location_ref)
            .await?
            .context("no table")?
            .version();
        assert_eq!(version, Some(2), "one commit added the column");

        // Removing a column is refused; the table keeps it.
        apply(
            &sinks,
            &sink("rows", &input, location_ref, "AddColumns", &[])?,
        )
        .await?;
        let removed =
            wait_condition(&sinks, "rows", "TableReady", "False", "ColumnRemoved").await?;
        ensure!(removed.message.contains("postcode"), "{}", removed.message);
        // So is a new type, naming both.
        let retyped = [json!({ "name": "postcode", "type": "int" })];
        apply(
            &sinks,
            &sink("rows", &input, location_ref, "AddColumns", &retyped)?,
        )
        .await?;
        let changed =
            wait_condition(&sinks, "rows", "TableReady", "False", "ColumnTypeChanged").await?;
        for mention in ["postcode", "is string", "declares int"] {
            ensure!(changed.message.contains(mention), "{}", changed.message);
        }
        assert_eq!(schema(lake_ref, location_ref).await?.0.len(), 4);

        // A bucket that does not exist.
        let nowhere = format!("s3://{}/listings", random_name("no-bucket"));
        apply(&sinks, &sink("lost", &input, &nowhere, "Create", &[])?).await?;
        let lost = wait_condition(&sinks, "lost", "TableReady", "False", "BucketNotFound").await?;
        ensure!(lost.message.contains(&nowhere), "{}", lost.message);

        // Retain (the default): deleting the sink keeps the table.
        support::delete_and_wait(&sinks, "rows").await?;
        ensure!(
            table(lake_ref, location_ref).await?.is_some(),
            "Retain keeps the table"
        );
        Ok(())
    })
    .await;
    remove(&lake, &location).await?;
    outcome
}

/// Proves: with `deletionPolicy: Delete`, the table the operator created is recorded
/// on the resource and, when the resource is deleted, every object under its location
/// goes while a neighbour whose name starts alike stays; a table that existed before
/// the sink is found, not recorded, and kept when the sink is deleted.
#[tokio::test]
async fn delta_sink_delete_policy_deletes_only_a_table_it_created() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let lake = env.lake.clone();
    let location = lake.location("ds-delete");
    let neighbour = format!("{location}-neighbour");
    let (lake_ref, location_ref, neighbour_ref) = (&lake, location.as_str(), neighbour.as_str());
    let outcome = kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let _operator = Operator::start(&env, &ns)?;
        let input = random_name("dsd-in");
        kafka::create_topic(&env, &input, 1).await?;
        lake::unloaded(&S3Location::from(neighbour_ref), options(lake_ref))?
            .object_store()
            .put(
                &Path::from("keep"),
                PutPayload::from_static(b"not the table's"),
            )
            .await?;
        let sinks: Api<DeltaSink> = Api::namespaced(client.clone(), &ns);
        let mut declared = sink("gone", &input, location_ref, "Create", &[])?;
        declared.spec.deletion_policy = Some(homestream_crds::deletion::DeletionPolicy::Delete);
        apply(&sinks, &declared).await?;
        wait_condition(&sinks, "gone", "TableReady", "True", "TableReady").await?;
        let recorded = sinks
            .get("gone")
            .await?
            .annotations()
            .get("homestream.io/created-tables")
            .cloned();
        assert_eq!(recorded.as_deref(), Some(location_ref));
        support::delete_and_wait(&sinks, "gone").await?;
        assert_eq!(objects(lake_ref, location_ref).await?, []);
        assert_eq!(
            objects(lake_ref, neighbour_ref).await?.len(),
            1,
            "the neighbour is not under the table's location"
        );

        // A table that existed before the sink is not the operator's to delete.
        let spec = declared.spec.validate()?;
        lake::create(
            &spec.location,
            options(lake_ref),
            &spec.columns,
            &spec.partition_by,
        )
        .await?;
        apply(&sinks, &declared).await?;
        let ready = wait_condition(&sinks, "gone", "TableReady", "True", "TableReady").await?;
        ensure!(
            ready.message.ends_with("matches the spec"),
            "the operator found the table, it did not create it: {}",
            ready.message
        );
        let recorded = sinks
            .get("gone")
            .await?
            .annotations()
            .get("homestream.io/created-tables")
            .cloned();
        assert_eq!(recorded, None, "no table is recorded as created");
        support::delete_and_wait(&sinks, "gone").await?;
        ensure!(
            table(lake_ref, location_ref).await?.is_some(),
            "a table the operator did not create is kept"
        );
        Ok(())
    })
    .await;
    remove(&lake, &location).await?;
    remove(&lake, &neighbour).await?;
    outcome
}

/// Proves: an operator whose own key the S3 server refuses reports `AccessDenied`,
/// saying that its identity needs rights on the location, creates nothing, and leaves
/// the status alone while the refusal lasts (a message that changed with every
/// attempt would wake the controller at once, again and again, past the backoff).
#[tokio::test]
async fn a_refused_operator_key_is_access_denied() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let lake = env.lake.clone();
    let location = lake.location("ds-denied");
    let (lake_ref, location_ref) = (&lake, location.as_str());
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let flags = admin_key_flags("AKIANOTAKEY", "not-the-secret")?;
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let _operator = Operator::start_with(&env, &ns, &flags, "homestream-operator-test", None)?;
        let input = random_name("dsa-in");
        kafka::create_topic(&env, &input, 1).await?;
        let sinks: Api<DeltaSink> = Api::namespaced(client.clone(), &ns);
        apply(
            &sinks,
            &sink("denied", &input, location_ref, "Create", &[])?,
        )
        .await?;
        let denied =
            wait_condition(&sinks, "denied", "TableReady", "False", "AccessDenied").await?;
        ensure!(
            denied.message.contains("operator's identity"),
            "{}",
            denied.message
        );
        assert_eq!(objects(lake_ref, location_ref).await?, []);
        let version = sinks.get("denied").await?.resource_version();
        // Backoff from 2 s: at least two more attempts in 8 s.
        tokio::time::sleep(std::time::Duration::from_secs(8)).await;
        assert_eq!(
            sinks.get("denied").await?.resource_version(),
            version,
            "the status stays the same while storage refuses the same way"
        );
        Ok(())
    })
    .await
}
