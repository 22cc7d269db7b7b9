//! The stack's lake: its S3 server (versitygw), and queries over Delta tables there
//! with DuckDB or Trino through `tests/env/lake/query.py`, the way an analyst's engine
//! reads them.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

/// How to reach the stack's S3 server and query engines.
#[derive(Debug, Clone)]
pub struct Lake {
    /// `http://host:port` of the S3 server (on the node bridge: pods reach it too).
    pub endpoint: String,
    /// The region the server answers for.
    pub region: String,
    /// The bucket the stack creates.
    pub bucket: String,
    /// The root access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The Python of the venv with DuckDB.
    pub python: PathBuf,
    /// `tests/env/lake/query.py`.
    pub query_script: PathBuf,
}

/// An engine that reads Delta tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// DuckDB with its delta extension (`delta_scan('s3://...')`).
    DuckDb,
    /// Trino, the engine Athena is built on (catalog `delta`).
    Trino,
}

impl Lake {
    /// A fresh table location in the stack's bucket.
    pub fn location(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, crate::random_name(name))
    }

    /// The resolved S3 connection the runtime configuration carries for this server.
    pub fn resolved(&self) -> Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "region": self.region,
            "pathStyle": true,
            "authenticated": true,
        })
    }

    /// The environment variables a sink reads its access key from.
    pub fn credential_env(&self) -> [(&'static str, &str); 2] {
        [
            (
                homestream_crds::runtime::S3_ACCESS_KEY_ID_ENV,
                self.access_key_id.as_str(),
            ),
            (
                homestream_crds::runtime::S3_SECRET_ACCESS_KEY_ENV,
                self.secret_access_key.as_str(),
            ),
        ]
    }

    /// Runs `sql` on `engine` and returns its rows as JSON objects (alias every
    /// column: engines name unaliased ones differently).
    ///
    /// # Errors
    /// When the engine fails; the error carries its message.
    pub async fn query(&self, engine: Engine, sql: &str) -> Result<Vec<Value>> {
        let engine_name = match engine {
            Engine::DuckDb => "duckdb",
            Engine::Trino => "trino",
        };
        let output = tokio::process::Command::new(&self.python)
            .arg(&self.query_script)
            .args([engine_name, sql])
            .output()
            .await
            .with_context(|| format!("running {}", self.query_script.display()))?;
        ensure!(
            output.status.success(),
            "{engine_name} failed on {sql}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        String::from_utf8(output.stdout)?
            .lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("a row: {line}")))
            .collect()
    }

    /// `SELECT count(*) AS n, count(DISTINCT <column>) AS d` over the Delta table at
    /// `location`, read by DuckDB: rows, and distinct values of `column`.
    ///
    /// # Errors
    /// When DuckDB fails.
    pub async fn count(&self, location: &str, column: &str) -> Result<(i64, i64)> {
        let rows = self
            .query(
                Engine::DuckDb,
                &format!("SELECT count(*) AS n, count(DISTINCT {column}) AS d FROM delta_scan('{location}')"),
            )
            .await?;
        let row = rows.first().context("no row from count(*)")?;
        let number = |name: &str| {
            row[name]
                .as_i64()
                .with_context(|| format!("{name} in {row}"))
        };
        Ok((number("n")?, number("d")?))
    }
}

/// The Secret the DeltaSinks' pods read the stack's S3 key from, as the operator's
/// defaults name it (keys `access-key-id`, `secret-access-key`).
pub const RUNTIME_KEY_SECRET: &str = "homestream-s3";

impl Lake {
    /// The [`RUNTIME_KEY_SECRET`] of a namespace whose DeltaSinks use the defaults.
    pub fn key_secret(&self) -> crate::secure_kafka::SecretData {
        (
            RUNTIME_KEY_SECRET,
            std::collections::BTreeMap::from([
                ("access-key-id".to_owned(), self.access_key_id.clone()),
                (
                    "secret-access-key".to_owned(),
                    self.secret_access_key.clone(),
                ),
            ]),
        )
    }

    /// The operator's S3 defaults for the stack: its endpoint, the pods' key from
    /// [`RUNTIME_KEY_SECRET`], and the operator's own key in files written once per
    /// test process (they hold the stack's root key, which every test shares).
    ///
    /// # Errors
    /// When the key files cannot be written.
    pub fn operator_env(&self) -> Result<Vec<(&'static str, String)>> {
        static KEY_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let dir = KEY_DIR
            .get_or_init(|| std::env::temp_dir().join(crate::random_name("operator-s3-key")));
        std::fs::create_dir_all(dir)?;
        let (id_file, secret_file) = (dir.join("access-key-id"), dir.join("secret-access-key"));
        std::fs::write(&id_file, &self.access_key_id)?;
        std::fs::write(&secret_file, &self.secret_access_key)?;
        Ok(vec![
            ("HOMESTREAM_S3_ENDPOINT", self.endpoint.clone()),
            ("HOMESTREAM_S3_REGION", self.region.clone()),
            ("HOMESTREAM_S3_PATH_STYLE", "true".to_owned()),
            (
                "HOMESTREAM_S3_ACCESS_KEY_ID_REF",
                format!("{RUNTIME_KEY_SECRET}/access-key-id"),
            ),
            (
                "HOMESTREAM_S3_SECRET_ACCESS_KEY_REF",
                format!("{RUNTIME_KEY_SECRET}/secret-access-key"),
            ),
            (
                "HOMESTREAM_S3_ADMIN_ACCESS_KEY_ID_FILE",
                id_file.display().to_string(),
            ),
            (
                "HOMESTREAM_S3_ADMIN_SECRET_ACCESS_KEY_FILE",
                secret_file.display().to_string(),
            ),
        ])
    }
}
