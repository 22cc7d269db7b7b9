//! Parsing a StreamTransform spec into [`ValidatedStreamTransform`], with defaults
//! filled in. Compiling the VRL program is the operator's job (it reports the
//! `ProgramValid` condition), not this crate's.

use std::num::NonZeroU32;

use super::{Delivery, StreamTransformSpec};
use crate::deletion::DeletionPolicy;
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
    /// The VRL source.
    pub program: String,
    /// Failure handling.
    pub on_error: OnError,
    /// Delivery guarantee.
    pub delivery: Delivery,
    /// Pods.
    pub replicas: NonZeroU32,
    /// What happens to the topics on deletion.
    pub deletion_policy: DeletionPolicy,
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
        problems.finish(|| {
            Some(ValidatedStreamTransform {
                input: self.input.clone(),
                output: self.output.topic.clone(),
                dead_letter: self
                    .dead_letter
                    .as_ref()
                    .map(|dead_letter| dead_letter.topic.clone()),
                program: self.program.clone(),
                on_error: on_error?,
                delivery: self.delivery.unwrap_or_default(),
                replicas: replicas?,
                deletion_policy: self.deletion_policy.unwrap_or_default(),
            })
        })
    }
}
