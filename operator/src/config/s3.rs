//! Operator-wide S3 defaults for DeltaSinks: the endpoint, region and addressing style
//! of the default object storage, the access key of the runtime pods (Secret keys,
//! looked up in each resource's own namespace: a pod can read only Secrets of its
//! namespace), and the operator's own key (files), with which it creates, checks and
//! deletes the tables.

use clap::Args;
use homestream_crds::connection::{S3Connection, S3Credentials};
use homestream_crds::runtime::ResolvedS3;
use homestream_crds::secret::SecretKeyRef;

use super::kafka_security::secret_key_ref;
use crate::lake::credentials::AdminKeyFiles;

/// The default object storage of DeltaSinks.
#[derive(Clone, Debug, Default, Args)]
pub struct S3Defaults {
    /// Endpoint of the default S3-compatible service, `http(s)://host[:port]` (MinIO,
    /// versitygw, Ceph, R2...). Unset: AWS S3 in --s3-region.
    #[arg(long, env = "HOMESTREAM_S3_ENDPOINT", value_parser = endpoint)]
    pub s3_endpoint: Option<String>,
    /// Region of the default buckets, e.g. `eu-west-2`.
    #[arg(long, env = "HOMESTREAM_S3_REGION")]
    pub s3_region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) to the default service, as most
    /// S3-compatible services want; unset: virtual-hosted (`bucket.endpoint/key`).
    #[arg(long, env = "HOMESTREAM_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// Access key id of the runtime pods, `secret/key` in each resource's namespace.
    /// Unset: the pods' ambient AWS credentials (IRSA, instance profile).
    #[arg(
        long,
        env = "HOMESTREAM_S3_ACCESS_KEY_ID_REF",
        value_parser = secret_key_ref,
        requires = "s3_secret_access_key"
    )]
    pub s3_access_key_id: Option<SecretKeyRef>,
    /// Secret access key of the runtime pods, `secret/key` in each resource's namespace.
    #[arg(
        long,
        env = "HOMESTREAM_S3_SECRET_ACCESS_KEY_REF",
        value_parser = secret_key_ref,
        requires = "s3_access_key_id"
    )]
    pub s3_secret_access_key: Option<SecretKeyRef>,
    /// The operator's own key.
    #[command(flatten)]
    pub admin: AdminKeyFiles,
}

impl S3Defaults {
    /// A resource's S3 connection: each field it sets wins over its default. The
    /// credentials are the runtime pods' (Secret keys in the resource's namespace);
    /// `authenticated` says whether the pods get them.
    pub fn resolve(&self, overrides: Option<&S3Connection>) -> (ResolvedS3, Option<S3Credentials>) {
        let credentials = overrides
            .and_then(|o| o.credentials.clone())
            .or_else(|| self.credentials());
        let resolved = ResolvedS3 {
            endpoint: overrides
                .and_then(|o| o.endpoint.as_ref())
                .map(|endpoint| endpoint.as_str().trim_end_matches('/').to_owned())
                .or_else(|| self.s3_endpoint.clone()),
            region: overrides
                .and_then(|o| o.region.clone())
                .or_else(|| self.s3_region.clone()),
            path_style: overrides
                .and_then(|o| o.path_style)
                .unwrap_or(self.s3_path_style),
            authenticated: credentials.is_some(),
        };
        (resolved, credentials)
    }

    fn credentials(&self) -> Option<S3Credentials> {
        Some(S3Credentials {
            access_key_id: self.s3_access_key_id.clone()?,
            secret_access_key: self.s3_secret_access_key.clone()?,
        })
    }
}

/// Parses an endpoint: `http(s)://host[:port]`, kept without a trailing `/`.
fn endpoint(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` is not http(s)://host[:port]"))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(format!("`{text}` is not http(s)://host[:port] (no path)"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::from_args;

    /// The flags of a cluster whose lake is a MinIO in the cluster.
    const DEFAULTS: &[&str] = &[
        "--s3-endpoint=http://minio.lake:9000/",
        "--s3-region=eu-west-2",
        "--s3-path-style",
        "--s3-access-key-id=lake-writer/access-key-id",
        "--s3-secret-access-key=lake-writer/secret-access-key",
    ];

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    #[test]
    fn without_overrides_a_resource_gets_every_default() {
        let config = from_args(DEFAULTS);
        let (resolved, credentials) = config.resolve_s3(None);
        assert_eq!(
            resolved,
            ResolvedS3 {
                endpoint: Some("http://minio.lake:9000".to_owned()),
                region: Some("eu-west-2".to_owned()),
                path_style: true,
                authenticated: true,
            }
        );
        assert_eq!(
            credentials,
            Some(S3Credentials {
                access_key_id: secret("lake-writer", "access-key-id"),
                secret_access_key: secret("lake-writer", "secret-access-key"),
            })
        );
    }

    #[test]
    fn each_field_a_resource_sets_wins_over_its_default() {
        let config = from_args(DEFAULTS);
        let overrides: S3Connection = serde_json::from_value(json!({
            "region": "us-east-1",
            "pathStyle": false,
            "credentials": {
                "accessKeyId": { "name": "team-lake", "key": "id" },
                "secretAccessKey": { "name": "team-lake", "key": "secret" },
            },
        }))
        .unwrap();
        let (resolved, credentials) = config.resolve_s3(Some(&overrides));
        assert_eq!(resolved.endpoint.as_deref(), Some("http://minio.lake:9000"));
        assert_eq!(resolved.region.as_deref(), Some("us-east-1"));
        assert!(!resolved.path_style);
        assert_eq!(credentials, overrides.credentials);
    }

    #[test]
    fn without_any_key_the_pods_use_their_ambient_credentials() {
        let (resolved, credentials) = from_args(&[]).resolve_s3(None);
        assert_eq!(resolved, ResolvedS3::default());
        assert_eq!(credentials, None);
    }

    #[test]
    fn bad_flags_are_refused_at_start() {
        for (args, mention) in [
            (&["--s3-endpoint=minio:9000"][..], "http(s)://host[:port]"),
            (&["--s3-endpoint=http://minio:9000/lake"][..], "no path"),
            (
                &["--s3-access-key-id=lake-writer/id"][..],
                "--s3-secret-access-key",
            ),
            (
                &["--s3-admin-access-key-id-file=/etc/homestream/s3/id"][..],
                "--s3-admin-secret-access-key-file",
            ),
        ] {
            let error = crate::config::try_from_args(args).unwrap_err().to_string();
            assert!(error.contains(mention), "{args:?}: {error}");
        }
    }
}
