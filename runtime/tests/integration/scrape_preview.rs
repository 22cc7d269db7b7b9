//! `homestream-runtime scrape preview FILE`, the built binary against the fixture site:
//! the records on stdout as JSON lines, the per-field summary on stderr, a failure that
//! says why when nothing is extracted, the Secret variable to set when one is missing;
//! with no Kafka, no cluster and no endpoints (the metrics port it would bind is taken).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Output;

use homestream_tests::random_name;
use serde_json::Value;

use crate::scrape::{manifest_text, server};

/// A manifest written to a file of its own, as a user's.
struct ManifestFile {
    dir: PathBuf,
}

impl ManifestFile {
    fn new(name: &str, addr: &str) -> Self {
        let dir = std::env::temp_dir().join(random_name("hs-preview-test"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("job.yaml"), manifest_text(name, addr)).unwrap();
        Self { dir }
    }

    /// Runs `homestream-runtime scrape preview` on the file with `args`.
    async fn preview(&self, args: &[&str]) -> Output {
        // The pods' metrics address, taken: a preview binds no port.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_homestream-runtime"));
        command
            .args(["scrape", "preview"])
            .arg(self.dir.join("job.yaml"))
            .args(args)
            .env("HOMESTREAM_LISTEN", taken.local_addr().unwrap().to_string())
            .env(
                "HOMESTREAM_CHROMIUM",
                crate::scrape::browser_options().executable,
            )
            // As a developer's shell may have it: a failure still prints no backtrace.
            .env("RUST_BACKTRACE", "1")
            .env_remove("HOMESTREAM_SECRET_RAPIDAPI_KEY");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        drop(taken);
        output
    }
}

impl Drop for ManifestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn records(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The summary's row of `field`: its filled and missing counts.
fn row(stderr: &str, field: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|line| line.split_whitespace().next() == Some(field))
        .unwrap_or_else(|| panic!("no row for {field}:\n{stderr}"));
    let mut columns = line.split_whitespace().skip(1);
    let mut number = || columns.next().unwrap().parse().unwrap();
    (number(), number())
}

#[tokio::test]
async fn preview_prints_records_and_how_each_field_filled() {
    let server = server::start().await;
    let file = ManifestFile::new("site-http", &server.addr.to_string());
    let output = file.preview(&["--max-pages", "2"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Two results pages of ten homes (maxPages 3, capped), two detail pages (capped).
    let records = records(&output);
    assert_eq!(records.len(), 20, "{stderr}");
    assert_eq!(records[0]["_meta"]["run"], "preview");
    assert_eq!(records[0]["_meta"]["job"], "listings/fixture-site");
    assert_eq!(server.hits("/listings/3"), 0);
    assert!(
        stderr.contains(
            "ScrapeJob listings/fixture-site: records 20, pages fetched 4, empty pages 0, items skipped 0, errors 0."
        ),
        "{stderr}"
    );
    // The fields in the records' order (serde_json's maps are sorted by name), item
    // and detail page fields alike, `_meta` left out.
    let fields: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("field "))
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["agent", "beds", "id", "price", "sqft", "title", "url"]
    );
    assert_eq!(row(&stderr, "id"), (20, 0));
    assert_eq!(row(&stderr, "sqft"), (2, 18));
    let title = stderr
        .lines()
        .find(|line| line.starts_with("title "))
        .unwrap();
    assert!(title.ends_with("\"Home 1\""), "{title}");
}

#[tokio::test]
async fn preview_renders_pages_in_the_browser() {
    let server = server::start().await;
    let file = ManifestFile::new("site-rendered-browser", &server.addr.to_string());
    let output = file.preview(&[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(records(&output).len(), 10, "{stderr}");
}

#[tokio::test]
async fn preview_fails_when_nothing_is_extracted_and_says_why() {
    let server = server::start().await;
    let file = ManifestFile::new("site-empty", &server.addr.to_string());
    let output = file.preview(&[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains(
            "Error: nothing was extracted: records 0, pages fetched 1, empty pages 1, items skipped 0, errors 0.\n  no item on a page: "
        ) && stderr.contains("extract.items.css"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");
    // The page's warning names it.
    assert!(
        stderr.contains("A results page yielded no item.") && stderr.contains("/empty"),
        "{stderr}"
    );
}

#[tokio::test]
async fn preview_names_the_variable_of_a_missing_header_secret() {
    // The job stops before any request, so the site is never asked.
    let file = ManifestFile::new("realtor-api", "127.0.0.1:9");
    let output = file.preview(&[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("set it here too, e.g. export HOMESTREAM_SECRET_RAPIDAPI_KEY="),
        "{stderr}"
    );
}
