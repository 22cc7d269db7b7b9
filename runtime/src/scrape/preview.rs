//! `homestream-runtime scrape preview`: the authoring loop's middle step. Runs a
//! ScrapeJob manifest (the YAML one would `kubectl apply`) on the author's machine with
//! the same crawl, fetchers, address guard and politeness as a run in the cluster, and
//! shows what it extracts: the records as JSON lines on stdout, how well each field
//! filled on stderr. No Kafka, no cluster, no endpoints; it fails when nothing is
//! extracted, saying why.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use homestream_common::shutdown::Shutdown;
use homestream_common::telemetry::DEFAULT_FILTER;
use homestream_crds::ScrapeJob;
use homestream_crds::runtime::ResourceIdentity;
use homestream_crds::scrapejob::ValidatedScrapeJob;
use homestream_crds::scrapejob::validate::ValidatedSource;
use serde::Deserialize as _;
use serde_json::Value;
use tracing_subscriber::EnvFilter;

use super::browser::BrowserOptions;
use super::crawl::Completion;
use super::job::{Job, JobError};
use super::metrics::{Metrics, RunTotals};
use super::output::{Output, OutputError, Record};

/// The run name in the records' `_meta.run`.
const RUN_NAME: &str = "preview";
/// Longest example value shown per field, in characters: one line of a terminal.
const EXAMPLE_WIDTH: usize = 60;

/// What to preview.
#[derive(Debug, Clone)]
pub struct Options {
    /// The ScrapeJob manifest.
    pub manifest: PathBuf,
    /// Caps the results pages followed from each start URL, and the detail pages
    /// visited, below the manifest's own `maxPages`.
    pub max_pages: Option<NonZeroU32>,
}

/// Installs a log subscriber for a person at a terminal: one plain line per event on
/// stderr (stdout carries the records); `RUST_LOG` filters as in the pods.
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .compact()
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Previews the manifest of `options`: prints each page's records on stdout as they
/// come, then the per-field summary on stderr.
///
/// # Errors
/// When the manifest cannot be read or is invalid, a header's Secret variable is not
/// set, the run times out, or nothing was extracted (the error says why).
pub async fn preview(options: &Options, shutdown: Shutdown, browser: BrowserOptions) -> Result<()> {
    let manifest = load(&options.manifest)?;
    let job = job(&manifest, options.max_pages, |name| {
        std::env::var(name).ok()
    })
    .with_context(|| format!("previewing {}", options.manifest.display()))?;
    let metrics = Arc::new(Metrics::default());
    let printer = Printer::new(std::io::stdout());
    let completion = super::scrape(&job, &printer, metrics.clone(), shutdown, browser)
        .await
        .with_context(|| format!("previewing ScrapeJob {}", job.name))?;
    let summary = printer.into_summary();
    let totals = metrics.totals();
    let reasons = metrics.reasons();
    if summary.records == 0 {
        bail!("{}", nothing_extracted(&totals, &reasons));
    }
    let mut report = format!(
        "ScrapeJob {}: {}\n",
        job.name,
        account(&totals, summary.records)
    );
    if completion == Completion::Interrupted {
        report.push_str("Stopped by a signal before the crawl finished.\n");
    }
    report.push_str(&summary.table());
    for reason in &reasons {
        report.push_str(&format!("  {reason}\n"));
    }
    // Best effort: with stderr gone, the exit code still says whether records came out.
    let _ = std::io::stderr().write_all(report.as_bytes());
    Ok(())
}

/// The one ScrapeJob in the YAML file at `path`.
///
/// # Errors
/// When the file cannot be read, or [`parse`] refuses it.
fn load(path: &Path) -> Result<ScrapeJob> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The one ScrapeJob among the YAML documents of `text`; other documents, such as the
/// Secret a job reads, are passed over.
///
/// # Errors
/// When the YAML does not parse, holds no ScrapeJob or several, or the ScrapeJob does
/// not match the API.
fn parse(text: &str) -> Result<ScrapeJob> {
    let mut jobs = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(document)
            .with_context(|| format!("document {}", index + 1))?;
        if value.get("kind").and_then(serde_yaml::Value::as_str) == Some("ScrapeJob") {
            let job = serde_yaml::from_value::<ScrapeJob>(value)
                .with_context(|| format!("the ScrapeJob (document {})", index + 1))?;
            jobs.push(job);
        }
    }
    match <[ScrapeJob; 1]>::try_from(jobs) {
        Ok([job]) => Ok(job),
        Err(jobs) => bail!(
            "{} documents of kind ScrapeJob; a preview runs exactly one",
            jobs.len()
        ),
    }
}

/// The runtime's view of `manifest`, named after its metadata, reading header Secrets
/// with `env` as the pod would, with `max_pages` capping its page limits.
///
/// # Errors
/// When the spec is invalid, or a header's Secret variable is not set (the error says
/// which to set, and how).
fn job(
    manifest: &ScrapeJob,
    max_pages: Option<NonZeroU32>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Job> {
    let resource = ResourceIdentity {
        kind: "ScrapeJob".into(),
        namespace: manifest
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: manifest.metadata.name.clone().unwrap_or_default(),
        generation: manifest.metadata.generation.unwrap_or(1),
    };
    let mut job = match Job::new(&manifest.spec, &resource, RUN_NAME.into(), env) {
        Ok(job) => job,
        Err(JobError::MissingSecret {
            header,
            secret,
            variable,
        }) => bail!(
            "header {header} takes its value from Secret {secret}: in the pod the operator sets \
             {variable} from it; set it here too, e.g. {}",
            export_command(&variable, &secret, &resource.namespace)
        ),
        Err(error) => return Err(error.into()),
    };
    if let Some(max) = max_pages {
        cap_pages(&mut job.spec, max);
    }
    Ok(job)
}

/// A shell line that sets `variable` from the Secret `name/key` in `namespace`.
fn export_command(variable: &str, secret: &str, namespace: &str) -> String {
    let (name, key) = secret.split_once('/').unwrap_or((secret, ""));
    // Dots in a data key are escaped in kubectl's JSONPath.
    let key = key.replace('.', "\\.");
    format!(
        "export {variable}=\"$(kubectl -n {namespace} get secret {name} -o jsonpath='{{.data.{key}}}' | base64 -d)\""
    )
}

/// Lowers every page limit of `spec` to at most `max`.
fn cap_pages(spec: &mut ValidatedScrapeJob, max: NonZeroU32) {
    let limits = [
        spec.next_page.as_mut().map(|next| &mut next.max_pages),
        spec.detail_pages
            .as_mut()
            .map(|detail| &mut detail.max_pages),
        match &mut spec.source {
            ValidatedSource::Http(http) => http.pagination.as_mut().map(|p| &mut p.max_pages),
            ValidatedSource::Browser(_) => None,
        },
    ];
    for limit in limits.into_iter().flatten() {
        *limit = (*limit).min(max);
    }
}

/// The run's counts, named as in `status.lastRun`.
fn account(totals: &RunTotals, records: u64) -> String {
    format!(
        "records {records}, pages fetched {}, empty pages {}, items skipped {}, errors {}.",
        totals.pages_fetched, totals.empty_pages, totals.items_skipped, totals.errors
    )
}

/// Why a run gave no record: its counts, and the reasons one per line.
fn nothing_extracted(totals: &RunTotals, reasons: &[String]) -> String {
    if totals.pages_fetched == 0 {
        return format!(
            "nothing was extracted: no page could be fetched (errors {}; the log above says why)",
            totals.errors
        );
    }
    let mut message = format!("nothing was extracted: {}", account(totals, 0));
    if reasons.is_empty() {
        message.push_str(" The log above says why.");
    }
    for reason in reasons {
        message.push_str("\n  ");
        message.push_str(reason);
    }
    message
}

/// Prints each page's records as JSON lines to `out` and tallies the summary.
struct Printer<W> {
    state: Mutex<(W, Summary)>,
}

impl<W: Write + Send> Printer<W> {
    fn new(out: W) -> Self {
        Self {
            state: Mutex::new((out, Summary::default())),
        }
    }

    fn into_summary(self) -> Summary {
        self.state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .1
    }
}

impl<W: Write + Send> Output for Printer<W> {
    async fn publish(&self, records: Vec<Record>) -> Result<(), OutputError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (out, summary) = &mut *state;
        for record in &records {
            summary.add(&record.value);
            writeln!(out, "{}", record.value).map_err(OutputError::Write)?;
        }
        // A page at a time, so that a slow crawl shows its records as they come.
        out.flush().map_err(OutputError::Write)
    }
}

/// How well each field filled, over the records printed.
#[derive(Debug, Default)]
struct Summary {
    records: u64,
    /// In the order first seen in the records: the job's fields, page fields and
    /// document fields alike, whatever extraction produces.
    fields: Vec<FieldTally>,
}

#[derive(Debug)]
struct FieldTally {
    name: String,
    filled: u64,
    example: Option<Value>,
}

impl Summary {
    fn add(&mut self, record: &Value) {
        self.records += 1;
        let Value::Object(fields) = record else {
            return;
        };
        for (name, value) in fields.iter().filter(|(name, _)| *name != "_meta") {
            let index = match self.fields.iter().position(|tally| tally.name == *name) {
                Some(index) => index,
                None => {
                    self.fields.push(FieldTally {
                        name: name.clone(),
                        filled: 0,
                        example: None,
                    });
                    self.fields.len() - 1
                }
            };
            let tally = &mut self.fields[index];
            if !value.is_null() {
                tally.filled += 1;
                tally.example.get_or_insert_with(|| value.clone());
            }
        }
    }

    /// The table: each field, how many records have it filled and missing (null or
    /// absent), and the first value seen.
    fn table(&self) -> String {
        if self.fields.is_empty() {
            return String::new();
        }
        let width = self
            .fields
            .iter()
            .map(|tally| tally.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("field".len());
        let mut table = format!(
            "{:<width$}  {:>7}  {:>7}  example\n",
            "field", "filled", "missing"
        );
        for tally in &self.fields {
            let example = tally
                .example
                .as_ref()
                .map_or_else(String::new, |value| shorten(&value.to_string()));
            table.push_str(&format!(
                "{:<width$}  {:>7}  {:>7}  {example}\n",
                tally.name,
                tally.filled,
                self.records - tally.filled,
            ));
        }
        table
    }
}

/// `text` cut to [`EXAMPLE_WIDTH`] characters, with an ellipsis when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(EXAMPLE_WIDTH) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(value: Value) -> Record {
        Record {
            key: String::new(),
            value,
        }
    }

    #[tokio::test]
    async fn records_are_printed_as_json_lines_and_fields_tallied_in_first_seen_order() {
        let printer = Printer::new(Vec::new());
        printer
            .publish(vec![
                record(json!({"id": "1", "price": null, "_meta": {"run": "preview"}})),
                record(json!({"id": "2", "price": 1200, "agent": "A", "_meta": {}})),
            ])
            .await
            .unwrap();
        let state = printer.state.into_inner().unwrap();
        let printed = String::from_utf8(state.0).unwrap();
        let lines: Vec<Value> = printed
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines[1]["price"], 1200);
        assert_eq!(lines.len(), 2);
        let summary = state.1;
        assert_eq!(
            summary.table(),
            "field   filled  missing  example\n\
             id           2        0  \"1\"\n\
             price        1        1  1200\n\
             agent        1        1  \"A\"\n"
        );
    }

    #[test]
    fn long_examples_are_cut_on_a_character_boundary() {
        let text = "é".repeat(EXAMPLE_WIDTH + 5);
        assert_eq!(shorten(&text), format!("{}…", "é".repeat(EXAMPLE_WIDTH)));
        assert_eq!(shorten("short"), "short");
    }

    const JOB: &str = r"
apiVersion: homestream.io/v1alpha1
kind: ScrapeJob
metadata: {name: api, namespace: listings}
spec:
  source:
    http:
      url: 'https://api.example.com/homes?page={{page}}'
      headers:
        - name: X-Api-Key
          valueFrom: {secretKeyRef: {name: example-api, key: api.key}}
      pagination: {pageNumber: {}, maxPages: 20}
  extract:
    items: {json: {path: '$.homes[*]'}}
    key: id
    fields: [{name: id, jsonPath: '$.id'}]
  output: {topic: {name: homes}}
";

    #[test]
    fn the_scrapejob_is_found_among_other_documents_and_its_page_limits_capped() {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: example-api}\nstringData: {api.key: k}\n";
        let manifest = parse(&format!("{secret}---{JOB}")).unwrap();
        let job = job(&manifest, NonZeroU32::new(2), |_| Some("k".into())).unwrap();
        assert_eq!(job.name, "listings/api");
        let ValidatedSource::Http(http) = &job.spec.source else {
            panic!("an HTTP source");
        };
        assert_eq!(http.pagination.as_ref().unwrap().max_pages.get(), 2);
    }

    #[test]
    fn a_missing_secret_variable_is_named_with_a_way_to_set_it() {
        let error = job(&parse(JOB).unwrap(), None, |_| None).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("set it here too, e.g. export HOMESTREAM_SECRET_")
                && message.contains(
                    "kubectl -n listings get secret example-api -o jsonpath='{.data.api\\.key}' | base64 -d"
                ),
            "{message}"
        );
    }

    #[test]
    fn a_file_without_a_scrapejob_is_refused() {
        let error = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "0 documents of kind ScrapeJob; a preview runs exactly one"
        );
    }

    #[test]
    fn nothing_extracted_gives_the_reasons() {
        let totals = RunTotals {
            pages_fetched: 1,
            empty_pages: 1,
            ..RunTotals::default()
        };
        let reasons = ["no item on a page: no element matches \"li\" (1)".to_owned()];
        assert_eq!(
            nothing_extracted(&totals, &reasons),
            "nothing was extracted: records 0, pages fetched 1, empty pages 1, items skipped 0, errors 0.\n  \
             no item on a page: no element matches \"li\" (1)"
        );
    }
}
