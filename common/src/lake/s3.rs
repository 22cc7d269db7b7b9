//! `s3://` and `s3a://` table locations for `deltalake`: object_store's own S3 client,
//! and deltalake's default log store, which commits a version with a conditional put
//! (`If-None-Match: *`), so two writers cannot both commit it.
//!
//! This is what `deltalake`'s `s3` feature registers too, except that it resolves
//! credentials through the AWS SDK when no endpoint is set. object_store's own chain
//! covers what a pod has (the `AWS_*` variables, web identity for IRSA, container and
//! instance credentials), and without the SDK a build compiles 69 crates fewer (the
//! AWS-LC C library stays: reqwest 0.13, under deltalake's kernel engine, asks for it).

use std::str::FromStr;
use std::sync::{Arc, Once};

use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError, Path};
use object_store::ObjectStoreScheme;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use url::Url;

/// Makes `s3://` and `s3a://` locations open; once per process, before the first table.
pub fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for scheme in ["s3://", "s3a://"] {
            let url = Url::parse(scheme).expect("a scheme with :// is a URL");
            object_store_factories().insert(url.clone(), Arc::new(S3Stores));
            logstore_factories().insert(url, Arc::new(S3LogStores));
        }
    });
}

/// Builds the S3 client of a table location from its storage options.
struct S3Stores;

impl ObjectStoreFactory for S3Stores {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        // The process's AWS_* variables first, the table's options over them.
        let mut builder = AmazonS3Builder::from_env()
            .with_url(url.as_str())
            // What deltalake's S3 support sets when the options do not: a copy that must
            // not overwrite (checkpoints, renames) as a conditional multipart upload.
            .with_config(AmazonS3ConfigKey::CopyIfNotExists, "multipart");
        for (key, value) in &config.raw {
            if let Ok(key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
                builder = builder.with_config(key, value);
            }
        }
        let (_, path) =
            ObjectStoreScheme::parse(url).map_err(|error| DeltaTableError::GenericError {
                source: Box::new(error),
            })?;
        Ok((Arc::new(builder.build()?), path))
    }
}

/// deltalake's default log store over an S3 client.
struct S3LogStores;

impl LogStoreFactory for S3LogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
