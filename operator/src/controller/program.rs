//! The `ProgramValid` phase: a StreamTransform's VRL program is compiled, or its SQL
//! query planned against its columns, here, with the runtime's own compiler and planner,
//! so a program that does not compile never reaches a pod and the user sees the
//! diagnostics, with line and column, in status.

use homestream_common::program::Program;
use homestream_crds::conditions::PROGRAM_VALID;
use homestream_crds::streamtransform::TransformProgram;

use crate::status::Observed;

/// The verdict on a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramCheck {
    /// `ProgramValid`.
    pub condition: Observed,
    /// The program's hash when it compiles.
    pub hash: Option<String>,
}

/// Compiles `program` and reports `ProgramValid` with every diagnostic (line, column, message).
pub fn check(program: &TransformProgram) -> ProgramCheck {
    match Program::compile(program) {
        Ok(program) => ProgramCheck {
            condition: Observed::ok(
                PROGRAM_VALID,
                "Compiled",
                format!("program {} compiles", short(program.hash())),
            ),
            hash: Some(program.hash().to_owned()),
        },
        Err(diagnostics) => ProgramCheck {
            condition: Observed::failed(
                PROGRAM_VALID,
                "CompileError",
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            hash: None,
        },
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrl(source: &str) -> TransformProgram {
        TransformProgram::Vrl(source.to_owned())
    }

    #[test]
    fn a_valid_program_is_valid_with_its_hash() {
        let check = check(&vrl(".price = to_int!(.price)\n"));
        assert!(check.condition.status, "{:?}", check.condition);
        assert!(check.hash.is_some());
    }

    #[test]
    fn an_invalid_program_reports_line_and_column() {
        let check = check(&vrl(".a = 1\n.b = nope(.a)\n"));
        assert!(!check.condition.status);
        assert_eq!(check.condition.reason, "CompileError");
        assert!(
            check.condition.message.starts_with("2:"),
            "{}",
            check.condition.message
        );
        assert!(check.hash.is_none());
    }
}
