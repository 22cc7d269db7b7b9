//! A StreamTransform's VRL program: compiled once against a function list without
//! I/O, then run on each record by a [`VrlRunner`] per thread.

use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Function, TargetValue, TimeZone};
use vrl::diagnostic::DiagnosticList;
use vrl::value::{ObjectMap, Secrets, Value};

use super::{Diagnostic, Origin, Outcome, Output, line_column, program_hash};

/// Functions of `stdlib-base` a program must not reach because they do I/O or read
/// the host: the VRL build already leaves out the env, system, network and crypto
/// sets, and this list keeps them out even if a feature is switched on by another
/// crate in the dependency graph (Cargo unifies features).
pub const DENIED_FUNCTIONS: &[&str] = &[
    "dns_lookup",
    "reverse_dns",
    "http_request",
    "get_env_var",
    "get_hostname",
    "get_timezone_name",
    "parse_etld",
    "validate_json_schema",
    "encode_proto",
    "parse_proto",
    "find_enrichment_table_records",
    "get_enrichment_table_record",
];

/// A compiled VRL program.
#[derive(Debug)]
pub struct VrlProgram {
    compiled: vrl::compiler::Program,
    hash: String,
    timezone: TimeZone,
}

/// The functions a program may call: VRL's base standard library without
/// [`DENIED_FUNCTIONS`].
pub fn functions() -> Vec<Box<dyn Function>> {
    vrl::stdlib::all()
        .into_iter()
        .filter(|function| !DENIED_FUNCTIONS.contains(&function.identifier()))
        .collect()
}

impl VrlProgram {
    /// Compiles `source`.
    ///
    /// # Errors
    /// The compiler's errors, each with its line and column; warnings alone do not fail.
    pub fn compile(source: &str) -> Result<Self, Vec<Diagnostic>> {
        let compiled = vrl::compiler::compile(source, &functions())
            .map_err(|diagnostics| diagnostics_at(source, &diagnostics))?;
        Ok(Self {
            compiled: compiled.program,
            hash: program_hash(source),
            // UTC so that a program's timestamps do not depend on the node it runs on.
            timezone: TimeZone::parse("UTC").unwrap_or_default(),
        })
    }

    /// The hash of the source ([`program_hash`]).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// A runner of this program, to be reused for every record a thread handles.
    pub fn runner(&self) -> VrlRunner<'_> {
        VrlRunner {
            program: self,
            runtime: Runtime::default(),
        }
    }
}

/// Runs a [`VrlProgram`] record after record, reusing the VRL runtime's allocations
/// (its variables) between records. One per thread: the program is shared.
pub struct VrlRunner<'a> {
    program: &'a VrlProgram,
    runtime: Runtime,
}

impl VrlRunner<'_> {
    /// Runs the program on a record's JSON payload, parsed straight into VRL values.
    pub fn run(&mut self, payload: &[u8], origin: Origin<'_>) -> Outcome {
        let value: Value = match serde_json::from_slice(payload) {
            Ok(value) => value,
            Err(error) => return Outcome::Failed(format!("payload is not JSON: {error}")),
        };
        let mut target = TargetValue {
            value,
            metadata: metadata(origin),
            secrets: Secrets::default(),
        };
        self.runtime.clear();
        let program = self.program;
        match self
            .runtime
            .resolve(&mut target, &program.compiled, &program.timezone)
        {
            // The output is about the size of the input: one allocation, not a few
            // doublings per record.
            Ok(_) => outputs(target, payload.len()),
            Err(Terminate::Abort(error)) => Outcome::Aborted(error.to_string()),
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }
}

fn metadata(origin: Origin<'_>) -> Value {
    let mut metadata = ObjectMap::new();
    // A UTF-8 key is a string, so that string functions work on it; other keys are bytes.
    let key = origin.key.map_or(Value::Null, |key| {
        std::str::from_utf8(key).map_or_else(|_| Value::from(key), Value::from)
    });
    metadata.insert("key".into(), key);
    metadata.insert("topic".into(), Value::from(origin.topic));
    metadata.insert("partition".into(), Value::from(i64::from(origin.partition)));
    metadata.insert("offset".into(), Value::from(origin.offset));
    metadata.insert(
        "timestamp".into(),
        origin.timestamp.map_or(Value::Null, Value::from),
    );
    Value::Object(metadata)
}

fn outputs(target: TargetValue, capacity: usize) -> Outcome {
    let key = match target
        .metadata
        .as_object()
        .and_then(|metadata| metadata.get("key"))
    {
        None | Some(Value::Null) => None,
        Some(key) => match key.as_bytes() {
            Some(bytes) => Some(bytes.to_vec()),
            None => match serde_json::to_vec(key) {
                Ok(encoded) => Some(encoded),
                Err(error) => return Outcome::Failed(format!("%key cannot be encoded: {error}")),
            },
        },
    };
    let values = match target.value {
        Value::Array(values) => values,
        value => vec![value],
    };
    let mut records = Vec::with_capacity(values.len());
    for value in values {
        let mut encoded = Vec::with_capacity(capacity);
        match serde_json::to_writer(&mut encoded, &value) {
            Ok(()) => records.push(Output {
                key: key.clone(),
                value: encoded,
            }),
            Err(error) => {
                return Outcome::Failed(format!("result cannot be encoded as JSON: {error}"));
            }
        }
    }
    Outcome::Records(records)
}

fn diagnostics_at(source: &str, diagnostics: &DiagnosticList) -> Vec<Diagnostic> {
    diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_problem())
        .map(|diagnostic| {
            let primary = diagnostic.labels.iter().find(|label| label.primary);
            let (line, column) =
                primary.map_or((1, 1), |label| line_column(source, label.span.start()));
            let mut message = format!("E{:03}: {}", diagnostic.code, diagnostic.message);
            if let Some(label) = primary
                && !label.message.is_empty()
                && label.message != diagnostic.message
            {
                message = format!("{message} ({})", label.message);
            }
            Diagnostic {
                line,
                column,
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin<'static> = Origin {
        key: Some(b"k1"),
        topic: "in",
        partition: 2,
        offset: 40,
        timestamp: Some(1_700_000_000_000),
    };

    fn run(source: &str, payload: &str) -> Outcome {
        let program = VrlProgram::compile(source).unwrap();
        program.runner().run(payload.as_bytes(), ORIGIN)
    }

    fn single(outcome: Outcome) -> (Option<String>, serde_json::Value) {
        let Outcome::Records(mut records) = outcome else {
            panic!("expected records, got {outcome:?}")
        };
        assert_eq!(records.len(), 1);
        let record = records.remove(0);
        (
            record.key.map(|k| String::from_utf8(k).unwrap()),
            serde_json::from_slice(&record.value).unwrap(),
        )
    }

    #[test]
    fn io_functions_are_refused_at_compile_time() {
        for (source, function) in [
            (".home = get_env_var!(\"HOME\")", "get_env_var"),
            (".ip = dns_lookup!(\"example.com\")", "dns_lookup"),
            (".h = get_hostname!()", "get_hostname"),
            (
                ".r = http_request!(\"http://169.254.169.254/\")",
                "http_request",
            ),
        ] {
            let diagnostics = VrlProgram::compile(source).unwrap_err();
            assert_eq!(
                diagnostics,
                vec![Diagnostic {
                    line: 1,
                    column: source.find(function).unwrap() + 1,
                    message: "E105: call to undefined function (undefined function)".to_owned(),
                }],
                "{source}"
            );
        }
        let available: Vec<&str> = functions()
            .iter()
            .map(|function| function.identifier())
            .collect();
        assert!(available.contains(&"parse_regex"));
        for denied in DENIED_FUNCTIONS {
            assert!(!available.contains(denied), "{denied} is available");
        }
    }

    #[test]
    fn diagnostics_carry_line_and_column() {
        let diagnostics = VrlProgram::compile(".a = 1\n.b = upcase(.a)\n").unwrap_err();
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(
            (diagnostics[0].line, diagnostics[0].column),
            (2, 13),
            "the argument `.a`"
        );
        assert!(
            diagnostics[0]
                .message
                .starts_with("E110: invalid argument type"),
            "{}",
            diagnostics[0]
        );
    }

    #[test]
    fn hash_is_stable_hex_sha256() {
        assert_eq!(
            program_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            VrlProgram::compile(".a = 1").unwrap().hash(),
            program_hash(".a = 1")
        );
    }

    #[test]
    fn key_is_preserved_or_replaced() {
        assert_eq!(
            single(run(".b = 2", r#"{"a":1}"#)),
            (Some("k1".into()), serde_json::json!({"a": 1, "b": 2}))
        );
        let (key, _) = single(run("%key = \"listing-\" + to_string!(.id)", r#"{"id":7}"#));
        assert_eq!(key.as_deref(), Some("listing-7"));
        let (key, _) = single(run("%key = null", r#"{}"#));
        assert_eq!(key, None);
    }

    #[test]
    fn origin_is_readable() {
        let (_, value) = single(run(".o = [%topic, %partition, %offset, %timestamp]", "{}"));
        assert_eq!(
            value,
            serde_json::json!({"o": ["in", 2, 40, 1_700_000_000_000_i64]})
        );
    }

    #[test]
    fn arrays_fan_out_and_abort_drops() {
        let Outcome::Records(records) = run(". = [{\"n\": 1}, {\"n\": 2}]", "{}") else {
            panic!()
        };
        assert_eq!(records.len(), 2);
        assert_eq!(run("abort", "{}"), Outcome::Aborted("aborted".to_owned()));
    }

    #[test]
    fn runtime_errors_and_bad_payloads_fail() {
        let Outcome::Failed(message) = run(".n = to_int!(.price)", r#"{"price":"POA"}"#) else {
            panic!()
        };
        assert!(message.contains("Invalid integer"), "{message}");
        let Outcome::Failed(message) = run(".a = 1", "not json") else {
            panic!()
        };
        assert!(message.starts_with("payload is not JSON"), "{message}");
    }
}
