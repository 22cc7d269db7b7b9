//! A StreamTransform's program, VRL or SQL: compiled once, then run on each chunk of
//! records.
//!
//! The operator calls [`Program::compile`] on every spec change to set the
//! `ProgramValid` condition from the [`Diagnostic`]s, and [`Program::hash`] to tell when
//! pods run the current program; the transform runs it through a [`Runner`] per thread.
//! A VRL program runs record by record ([`vrl`]); a SQL query runs on the chunk as one
//! Arrow batch ([`sql`]). Either way each input record gets one [`Outcome`].

pub mod sql;
pub mod vrl;

use homestream_crds::streamtransform::{TransformProgram, ValidatedSql};
use sha2::{Digest, Sha256};

pub use self::sql::{SqlProgram, SqlRunner};
pub use self::vrl::{VrlProgram, VrlRunner};

/// A compile error or warning at a position of the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, with VRL's error code (`E105: call to undefined function`).
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// What a program made of one record.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The records to write (none, one, or one per element when `.` became an array),
    /// each with its key (`%key` after the run).
    Records(Vec<Output>),
    /// The program called `abort`, or the SQL query left no row of the record.
    Aborted(String),
    /// The program failed at run time.
    Failed(String),
}

/// One output record.
#[derive(Debug, PartialEq)]
pub struct Output {
    /// The Kafka key: `%key` after the run, `None` when it is null.
    pub key: Option<Vec<u8>>,
    /// The value, encoded as JSON.
    pub value: Vec<u8>,
}

/// Where a record came from, visible to the program as `%topic`, `%partition`,
/// `%offset` and `%timestamp` (milliseconds), next to the writable `%key`.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// The record's key.
    pub key: Option<&'a [u8]>,
    /// The source topic.
    pub topic: &'a str,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// The record's Kafka timestamp in milliseconds.
    pub timestamp: Option<i64>,
}

/// One record to run: its JSON payload and where it came from.
pub type Input<'a> = (&'a [u8], Origin<'a>);

/// The stable identity of a program's source: lower-case hex SHA-256. It goes into
/// dead-letter headers and the StreamTransform status.
pub fn program_hash(source: &str) -> String {
    Sha256::digest(source.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The identity of a program as [`program_hash`] makes it: a VRL program's source; a SQL
/// program's query followed by its columns, since the plan depends on both.
pub fn transform_program_hash(program: &TransformProgram) -> String {
    match program {
        TransformProgram::Vrl(source) => program_hash(source),
        TransformProgram::Sql(sql) => program_hash(&sql_identity(sql)),
    }
}

fn sql_identity(sql: &ValidatedSql) -> String {
    let mut identity = sql.query.clone();
    for (name, sql_type) in &sql.columns {
        identity.push_str(&format!("\n-- column {name:?} {sql_type}"));
    }
    identity
}

/// A compiled program.
#[derive(Debug)]
pub enum Program {
    /// A VRL program.
    Vrl(VrlProgram),
    /// A planned SQL query.
    Sql(SqlProgram),
}

impl Program {
    /// Compiles a VRL program or plans a SQL query.
    ///
    /// # Errors
    /// Every error found, each with its line and column in the source or query.
    pub fn compile(program: &TransformProgram) -> Result<Self, Vec<Diagnostic>> {
        match program {
            TransformProgram::Vrl(source) => VrlProgram::compile(source).map(Self::Vrl),
            TransformProgram::Sql(sql) => SqlProgram::plan(sql).map(Self::Sql),
        }
    }

    /// The hash of the program ([`transform_program_hash`]).
    pub fn hash(&self) -> &str {
        match self {
            Self::Vrl(program) => program.hash(),
            Self::Sql(program) => program.hash(),
        }
    }

    /// A runner of this program, to be reused for every chunk a thread handles.
    pub fn runner(&self) -> Runner<'_> {
        match self {
            Self::Vrl(program) => Runner::Vrl(program.runner()),
            Self::Sql(program) => Runner::Sql(program.runner()),
        }
    }
}

/// Runs a [`Program`] on chunks of records. One per thread: the program is shared.
pub enum Runner<'a> {
    /// Record by record.
    Vrl(VrlRunner<'a>),
    /// A chunk at a time.
    Sql(SqlRunner<'a>),
}

impl Runner<'_> {
    /// The outcome of each input, in input order.
    pub fn run(&mut self, inputs: &[Input<'_>]) -> Vec<Outcome> {
        match self {
            Self::Vrl(runner) => inputs
                .iter()
                .map(|(payload, origin)| runner.run(payload, *origin))
                .collect(),
            Self::Sql(runner) => runner.run(inputs),
        }
    }
}

/// 1-based line and character column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}
