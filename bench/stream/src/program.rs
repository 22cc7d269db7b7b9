//! The cleaning programs, VRL and SQL, and what one costs alone: its CPU time per record
//! in process, without Kafka, run on chunks of the transform's size as the transform
//! runs it. The share of the transform's cost that is the program, and a target for
//! `perf record`.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use homestream_common::program::{Origin, Outcome, Program};
use homestream_crds::StreamTransform;
use homestream_crds::streamtransform::{SqlProgram, TransformProgram};
use homestream_runtime::stream::transform::chunk_records;

use crate::child::proc_usage;
use crate::records;

/// The VRL cleaning program.
pub(crate) const VRL: &str = include_str!("../../../runtime/programs/clean_listing.vrl");
/// The StreamTransform whose `spec.sql` is the cleaning program in SQL
/// (`runtime/programs/clean_listing.sql`) with the columns it reads.
const SQL_EXAMPLE: &str = include_str!(
    "../../../manifests/examples/pipeline/normalise-listings-sql.streamtransform.yaml"
);

/// The SQL example StreamTransform.
fn sql_example() -> Result<StreamTransform> {
    serde_yaml::from_str(SQL_EXAMPLE).context("parsing the SQL example StreamTransform")
}

/// The SQL cleaning program as a StreamTransform spec declares it: its query and columns.
///
/// # Errors
/// When the example does not parse or declares no SQL program.
pub(crate) fn sql_spec() -> Result<SqlProgram> {
    sql_example()?
        .spec
        .sql
        .context("the SQL example StreamTransform has no spec.sql")
}

/// A cleaning program by its language, `vrl` or `sql`.
///
/// # Errors
/// On another name, or when the SQL example does not validate.
pub(crate) fn cleaning(language: &str) -> Result<TransformProgram> {
    match language {
        "vrl" => Ok(TransformProgram::Vrl(VRL.to_owned())),
        "sql" => Ok(sql_example()?.spec.validate()?.program),
        other => anyhow::bail!("no cleaning program in {other:?}: vrl or sql"),
    }
}

/// The program in `path`: SQL when it ends in `.sql` (its query, with the columns the SQL
/// example declares), VRL otherwise.
///
/// # Errors
/// When the file cannot be read or the SQL spec does not validate.
pub(crate) fn load(path: &Path) -> Result<TransformProgram> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_none_or(|extension| extension != "sql") {
        return Ok(TransformProgram::Vrl(source));
    }
    let mut example = sql_example()?;
    example.spec.sql = Some(SqlProgram {
        query: source,
        ..sql_spec()?
    });
    Ok(example
        .spec
        .validate()
        .with_context(|| format!("{} with the SQL example's columns", path.display()))?
        .program)
}

/// What running a program alone cost.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ProgramCost {
    pub(crate) records: usize,
    /// Records a run.
    pub(crate) chunk: usize,
    pub(crate) cpu_seconds: f64,
    /// Bytes of the records the program wrote.
    pub(crate) bytes_out: usize,
    /// Inputs the program made no record of (dropped, aborted or failed).
    pub(crate) without_output: usize,
}

impl ProgramCost {
    pub(crate) fn micros_per_record(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.records as f64
    }
}

/// Runs `program` on `records` generated records (10 000 distinct ones, over and over),
/// [`chunk_records`] a run (as the transform polls them), on this thread, and measures
/// this process's CPU time.
///
/// # Errors
/// When the program does not compile, or `/proc` cannot be read.
pub(crate) fn cost(program: &TransformProgram, records: usize) -> Result<ProgramCost> {
    let payloads: Vec<Vec<u8>> = (0..records.min(10_000))
        .map(|n| serde_json::to_vec(&records::listing(n)))
        .collect::<Result<_, _>>()?;
    let compiled = Program::compile(program).map_err(|errors| anyhow!("{errors:?}"))?;
    let chunk = chunk_records(&compiled);
    let mut runner = compiled.runner();
    let mut cost = ProgramCost {
        records,
        chunk,
        cpu_seconds: 0.0,
        bytes_out: 0,
        without_output: 0,
    };
    // CPU time, not wall time: the machine is shared.
    let cpu_before = proc_usage(std::process::id())?.0;
    for first in (0..records).step_by(chunk) {
        let inputs: Vec<_> = (first..records.min(first + chunk))
            .map(|n| {
                let origin = Origin {
                    key: Some(b"raw-1".as_slice()),
                    topic: "bench-in",
                    partition: 0,
                    offset: n as i64,
                    timestamp: Some(1_778_751_000_000),
                };
                (payloads[n % payloads.len()].as_slice(), origin)
            })
            .collect();
        for outcome in runner.run(&inputs) {
            match outcome {
                Outcome::Records(records) if !records.is_empty() => {
                    cost.bytes_out += records
                        .iter()
                        .map(|record| record.value.len())
                        .sum::<usize>();
                }
                _ => cost.without_output += 1,
            }
        }
    }
    cost.cpu_seconds = proc_usage(std::process::id())?.0 - cpu_before;
    Ok(cost)
}

/// `bench-stream program [records] [file]`: the cost of the VRL cleaning program, or of
/// `file`'s, printed.
pub(crate) fn print_cost(records: usize, path: Option<&Path>) -> Result<()> {
    let program = match path {
        Some(path) => load(path)?,
        None => cleaning("vrl")?,
    };
    let language = match program {
        TransformProgram::Vrl(_) => "VRL",
        TransformProgram::Sql(_) => "SQL",
    };
    let cost = cost(&program, records)?;
    println!(
        "{records} records through the {language} program, {} a run, in {:.2} CPU s: {:.2} us/record ({} bytes out, {} records without output)",
        cost.chunk,
        cost.cpu_seconds,
        cost.micros_per_record(),
        cost.bytes_out,
        cost.without_output,
    );
    Ok(())
}
