//! Parsing a StreamTransform spec into [`ValidatedStreamTransform`], with defaults
//! filled in. Compiling the VRL program or planning the SQL query is the operator's job
//! (it reports the `ProgramValid` condition), not this crate's; the SQL columns' types
//! are parsed here.

use std::num::NonZeroU32;

use super::{Delivery, SqlProgram, StreamTransformSpec};
use crate::deletion::DeletionPolicy;
use crate::deltasink::types::LakeType;
use crate::topic::{self, OnError, TopicInput, TopicSpec};
use crate::validation::{InvalidSpec, Problems};

/// A StreamTransform spec that parsed, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedStreamTransform {
    /// The topic read.
    pub input: TopicInput,
    /// The topic written.
    pub output: TopicSpec,
    /// The dead-letter topic.
    pub dead_letter: Option<TopicSpec>,
    /// The program.
    pub program: TransformProgram,
    /// Failure handling.
    pub on_error: OnError,
    /// Delivery guarantee.
    pub delivery: Delivery,
    /// Pods.
    pub replicas: NonZeroU32,
    /// What happens to the topics on deletion.
    pub deletion_policy: DeletionPolicy,
}

/// What a StreamTransform runs.
#[derive(Debug, Clone, PartialEq)]
pub enum TransformProgram {
    /// A VRL program's source, run on each record.
    Vrl(String),
    /// A SQL query, run on each batch.
    Sql(ValidatedSql),
}

/// A SQL program with its columns' types parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedSql {
    /// The query.
    pub query: String,
    /// The columns of `records` read from the record's value, in declared order.
    pub columns: Vec<(String, LakeType)>,
}

impl StreamTransformSpec {
    /// Parses the spec.
    ///
    /// # Errors
    /// Every problem CEL could not catch, each with its field path.
    pub fn validate(&self) -> Result<ValidatedStreamTransform, InvalidSpec> {
        let mut problems = Problems::default();
        topic::check_declared(&self.output.topic, "spec.output.topic", &mut problems);
        if let Some(dead_letter) = &self.dead_letter {
            topic::check_declared(&dead_letter.topic, "spec.deadLetter.topic", &mut problems);
        }
        let on_error = topic::on_error(
            self.on_error,
            self.dead_letter.is_some(),
            "spec.onError",
            &mut problems,
        );
        let replicas = topic::replicas(self.replicas, &self.input, "spec.replicas", &mut problems);
        let program = match (&self.program, &self.sql) {
            (Some(vrl), None) => Some(TransformProgram::Vrl(vrl.clone())),
            (None, Some(sql)) => sql_program(sql, &mut problems).map(TransformProgram::Sql),
            _ => {
                problems.push("spec", "exactly one of program (VRL) and sql is required");
                None
            }
        };
        problems.finish(|| {
            Some(ValidatedStreamTransform {
                input: self.input.clone(),
                output: self.output.topic.clone(),
                dead_letter: self
                    .dead_letter
                    .as_ref()
                    .map(|dead_letter| dead_letter.topic.clone()),
                program: program?,
                on_error: on_error?,
                delivery: self.delivery.unwrap_or_default(),
                replicas: replicas?,
                deletion_policy: self.deletion_policy.unwrap_or_default(),
            })
        })
    }
}

fn sql_program(sql: &SqlProgram, problems: &mut Problems) -> Option<ValidatedSql> {
    let mut columns = Vec::with_capacity(sql.columns.len());
    for (index, column) in sql.columns.iter().enumerate() {
        let name = column.name.as_str();
        if sql.columns[..index]
            .iter()
            .any(|earlier| earlier.name == column.name)
        {
            problems.push(
                format!("spec.sql.columns[{index}].name"),
                format!("column {name} is declared twice"),
            );
        }
        let path = format!("spec.sql.columns[{index}].type");
        if let Some(sql_type) = problems.check(path, LakeType::parse(&column.sql_type)) {
            columns.push((name.to_owned(), sql_type));
        }
    }
    (columns.len() == sql.columns.len()).then(|| ValidatedSql {
        query: sql.query.clone(),
        columns,
    })
}
