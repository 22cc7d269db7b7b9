//! A StreamTransform's SQL program, run by DataFusion on each chunk of records as one
//! Arrow batch.
//!
//! [`SqlProgram::plan`] checks the query's shape ([`query`]), plans it against the table
//! `records` ([`schema`]) and keeps the physical plan; the operator calls it to report
//! `ProgramValid`, the transform to run it. The table is a stream whose one batch is the
//! chunk a run hands over in its task's configuration, so one plan serves every chunk
//! and every thread. A chunk is decoded into `records` ([`decode`]), the plan runs, and
//! its rows become an [`Outcome`] per record ([`encode`]). A run that fails as a whole
//! (a cast that fails on one row fails them all) is run again one record at a time, so
//! that only the records at fault fail, each with the reason.

mod decode;
mod encode;
pub mod query;
pub mod schema;

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{SchemaRef, UInt32Type};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::config::Dialect;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as ParsedStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::executor::block_on;
use homestream_crds::streamtransform::sql::TABLE;
use homestream_crds::streamtransform::{TransformProgram, ValidatedSql};

use self::encode::Layout;
use super::{Diagnostic, Input, Outcome, transform_program_hash};

/// A planned SQL program.
#[derive(Debug)]
pub struct SqlProgram {
    plan: Arc<dyn ExecutionPlan>,
    /// The task configuration a run adds its chunk to.
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    value: SchemaRef,
    records: SchemaRef,
    layout: Layout,
    hash: String,
}

/// The chunk a run reads as `records`, handed over in the task's configuration.
struct Chunk(RecordBatch);

/// `records`: the one batch of the running task's [`Chunk`].
#[derive(Debug)]
struct ChunkStream(SchemaRef);

impl PartitionStream for ChunkStream {
    fn schema(&self) -> &SchemaRef {
        &self.0
    }

    fn execute(&self, task: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batch = task
            .session_config()
            .get_extension::<Chunk>()
            .map(|chunk| chunk.0.clone())
            .ok_or_else(|| DataFusionError::Internal("no chunk to read as records".into()));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.0),
            futures::stream::iter([batch]),
        ))
    }
}

impl SqlProgram {
    /// Checks and plans the query against the declared columns.
    ///
    /// # Errors
    /// Every error found, each with its line and column in the query.
    pub fn plan(sql: &ValidatedSql) -> Result<Self, Vec<Diagnostic>> {
        let value = schema::value_schema(&sql.columns);
        let records = schema::records_schema(&value);
        let config = SessionConfig::new()
            // One partition: no repartitioning, so no task is spawned and a run is a
            // plain poll of the plan's stream on the calling thread.
            .with_target_partitions(1)
            // Column names are the records' field names, in their case.
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
            .set_bool("datafusion.sql_parser.collect_spans", true);
        let context = SessionContext::new_with_config(config.clone());
        StreamingTable::try_new(
            Arc::clone(&records),
            vec![Arc::new(ChunkStream(Arc::clone(&records)))],
        )
        .and_then(|table| context.register_table(TABLE, Arc::new(table)))
        .map_err(|error| vec![whole(&sql.query, &error)])?;
        let state = context.state();
        let parsed = state
            .sql_to_statement(&sql.query, &Dialect::Generic)
            .map_err(|error| diagnostics(&sql.query, &error))?;
        let ParsedStatement::Statement(statement) = parsed else {
            return Err(vec![Diagnostic {
                line: 1,
                column: 1,
                message: "only a SELECT query is allowed".to_owned(),
            }]);
        };
        let Statement::Query(mut query) = *statement else {
            return Err(vec![Diagnostic {
                line: 1,
                column: 1,
                message: "only a SELECT query is allowed".to_owned(),
            }]);
        };
        let aggregates = state.aggregate_functions();
        query::check_and_carry_rows(&mut query, &|name| aggregates.contains_key(name))?;
        let statement = ParsedStatement::Statement(Box::new(Statement::Query(query)));
        let logical = block_on(state.statement_to_plan(statement))
            .and_then(|plan| {
                SQLOptions::new()
                    .with_allow_ddl(false)
                    .with_allow_dml(false)
                    .with_allow_statements(false)
                    .verify_plan(&plan)?;
                Ok(plan)
            })
            .map_err(|error| diagnostics(&sql.query, &error))?;
        refuse_other_nodes(&logical)?;
        let plan = block_on(state.create_physical_plan(&logical))
            .map_err(|error| diagnostics(&sql.query, &error))?;
        let layout = Layout::of(&plan.schema()).map_err(|message| {
            vec![Diagnostic {
                line: 1,
                column: 1,
                message,
            }]
        })?;
        Ok(Self {
            plan,
            config,
            runtime: state.runtime_env().clone(),
            value,
            records,
            layout,
            hash: transform_program_hash(&TransformProgram::Sql(sql.clone())),
        })
    }

    /// The hash of the query and its columns.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// A runner of this program.
    pub fn runner(&self) -> SqlRunner<'_> {
        SqlRunner { program: self }
    }

    /// Runs the plan on one batch of `records`.
    fn execute(&self, batch: RecordBatch) -> Result<Vec<RecordBatch>, DataFusionError> {
        let config = self.config.clone().with_extension(Arc::new(Chunk(batch)));
        let task = TaskContext::new(
            None,
            String::new(),
            config,
            Default::default(),
            Default::default(),
            Default::default(),
            Default::default(),
            Arc::clone(&self.runtime),
        );
        block_on(collect(Arc::clone(&self.plan), Arc::new(task)))
    }

    /// Runs each record of `batch` alone, so that only those the query fails on fail:
    /// the output of the others, and `failed` with the failures added.
    fn one_by_one(
        &self,
        batch: &RecordBatch,
        mut failed: Vec<(usize, String)>,
    ) -> (Vec<RecordBatch>, Vec<(usize, String)>) {
        let mut results = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let one = batch.slice(row, 1);
            match self.execute(one.clone()) {
                Ok(batches) => results.extend(batches),
                Err(error) => failed.push((
                    input_index(&one),
                    format!(
                        "the query failed on this record: {}",
                        error.strip_backtrace()
                    ),
                )),
            }
        }
        (results, failed)
    }
}

/// Runs a [`SqlProgram`] on chunks of records.
pub struct SqlRunner<'a> {
    program: &'a SqlProgram,
}

impl SqlRunner<'_> {
    /// The outcome of each input, in input order.
    pub fn run(&mut self, inputs: &[Input<'_>]) -> Vec<Outcome> {
        let program = self.program;
        let decoded = match decode::decode(inputs, &program.value, &program.records) {
            Ok(decoded) => decoded,
            Err(error) => return fail_all(inputs, &format!("records do not decode: {error}")),
        };
        let (results, failed) = match program.execute(decoded.batch.clone()) {
            Ok(results) => (results, decoded.failed),
            Err(_) => program.one_by_one(&decoded.batch, decoded.failed),
        };
        encode::outcomes(inputs, &results, &program.layout, failed)
            .unwrap_or_else(|error| fail_all(inputs, &format!("output does not encode: {error}")))
    }
}

/// The input index of a one-row batch of `records`: its row number, the last column.
fn input_index(one: &RecordBatch) -> usize {
    let rows = one
        .column(one.num_columns() - 1)
        .as_primitive::<UInt32Type>();
    rows.value(0) as usize
}

fn fail_all(inputs: &[Input<'_>], reason: &str) -> Vec<Outcome> {
    inputs
        .iter()
        .map(|_| Outcome::Failed(reason.to_owned()))
        .collect()
}

/// Refuses any plan node but those of a per-record map or filter over `records`: what
/// the syntax checks let through and DataFusion plans as a mix of records.
fn refuse_other_nodes(plan: &LogicalPlan) -> Result<(), Vec<Diagnostic>> {
    let mut refused = None;
    let _ = plan.apply(|node| {
        let allowed = matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::Unnest(_)
        );
        if allowed {
            Ok(TreeNodeRecursion::Continue)
        } else {
            refused = Some(node.display().to_string());
            Ok(TreeNodeRecursion::Stop)
        }
    });
    match refused {
        None => Ok(()),
        Some(node) => Err(vec![Diagnostic {
            line: 1,
            column: 1,
            message: format!(
                "the query plans to {node}, which mixes records: only a map or filter of each record is allowed"
            ),
        }]),
    }
}

/// The diagnostics of a DataFusion error: each of a collection, at its span, or at the
/// position the parser wrote into its message, or at the start.
fn diagnostics(query: &str, error: &DataFusionError) -> Vec<Diagnostic> {
    error.iter().map(|error| whole(query, error)).collect()
}

fn whole(query: &str, error: &DataFusionError) -> Diagnostic {
    let message = error.strip_backtrace();
    if let Some(span) = error.diagnostic().and_then(|diagnostic| diagnostic.span) {
        return query::at_position(span.start.line, span.start.column, message);
    }
    match parser_position(&message) {
        Some((line, column, text)) => Diagnostic {
            line,
            column,
            message: text,
        },
        // The parser names no position when the query ended too soon: its end is where.
        None if message.contains("found: EOF") => {
            let (line, column) = super::line_column(query, query.trim_end().len());
            Diagnostic {
                line,
                column,
                message,
            }
        }
        None => Diagnostic {
            line: 1,
            column: 1,
            message,
        },
    }
}

/// sqlparser writes the position at the end of its message: `... at Line: 2, Column: 7`.
fn parser_position(message: &str) -> Option<(usize, usize, String)> {
    let (text, position) = message.rsplit_once(" at Line: ")?;
    let (line, column) = position.split_once(", Column: ")?;
    Some((
        line.trim().parse().ok()?,
        column.trim().parse().ok()?,
        text.to_owned(),
    ))
}

#[cfg(test)]
mod tests;
