//! The operator's own S3 access key: two files (the Helm chart mounts them from a
//! Secret in the operator's namespace; the key never passes through flags, environment
//! values or logs). They are read on every use, so a rotated Secret reaches the next
//! reconcile without a restart. Without them the operator uses its ambient AWS
//! credentials (IRSA, an instance profile, `AWS_*` variables).

use std::path::{Path, PathBuf};

use clap::Args;
use homestream_common::lake::S3Key;

/// Where the operator finds its own S3 access key.
#[derive(Clone, Debug, Default, Args)]
pub struct AdminKeyFiles {
    /// File holding the access key id the operator creates, checks and deletes tables
    /// with. Unset: the operator's ambient AWS credentials.
    #[arg(
        long,
        env = "HOMESTREAM_S3_ADMIN_ACCESS_KEY_ID_FILE",
        requires = "s3_admin_secret_access_key_file"
    )]
    pub s3_admin_access_key_id_file: Option<PathBuf>,
    /// File holding the secret access key of --s3-admin-access-key-id-file.
    #[arg(
        long,
        env = "HOMESTREAM_S3_ADMIN_SECRET_ACCESS_KEY_FILE",
        requires = "s3_admin_access_key_id_file"
    )]
    pub s3_admin_secret_access_key_file: Option<PathBuf>,
}

/// A key file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the operator's S3 key file {path}: {source}")]
pub struct KeyFileError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

impl AdminKeyFiles {
    /// The key in the files; `None` when no files are configured.
    ///
    /// # Errors
    /// When a file cannot be read.
    pub fn read(&self) -> Result<Option<S3Key>, KeyFileError> {
        let (Some(id), Some(secret)) = (
            &self.s3_admin_access_key_id_file,
            &self.s3_admin_secret_access_key_file,
        ) else {
            return Ok(None);
        };
        Ok(Some(S3Key {
            access_key_id: secret_text(id)?,
            secret_access_key: secret_text(secret)?,
        }))
    }
}

/// A file's text without the trailing newline an editor or `echo` leaves (a Secret
/// created with `--from-literal` has none).
fn secret_text(path: &Path) -> Result<String, KeyFileError> {
    let bytes = std::fs::read(path).map_err(|source| KeyFileError {
        path: path.to_owned(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\r', '\n'])
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_on_every_use_without_its_newline() {
        let dir = std::env::temp_dir().join(format!("homestream-s3-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (id, secret) = (dir.join("id"), dir.join("secret"));
        std::fs::write(&id, "AKIAOPERATOR\n").unwrap();
        std::fs::write(&secret, "first").unwrap();
        let files = AdminKeyFiles {
            s3_admin_access_key_id_file: Some(id),
            s3_admin_secret_access_key_file: Some(secret.clone()),
        };
        let key = files.read().unwrap().unwrap();
        assert_eq!(
            (key.access_key_id.as_str(), key.secret_access_key.as_str()),
            ("AKIAOPERATOR", "first")
        );
        assert!(
            !format!("{key:?}").contains("first"),
            "the secret never reaches a log line"
        );
        std::fs::write(&secret, "rotated").unwrap();
        assert_eq!(files.read().unwrap().unwrap().secret_access_key, "rotated");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_files_is_no_key_and_a_missing_file_is_named() {
        assert!(AdminKeyFiles::default().read().unwrap().is_none());
        let files = AdminKeyFiles {
            s3_admin_access_key_id_file: Some(PathBuf::from("/nonexistent/id")),
            s3_admin_secret_access_key_file: Some(PathBuf::from("/nonexistent/secret")),
        };
        let error = files.read().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/id"), "{error}");
    }
}
