//! The Next.js App Router's flight data (React Server Components payload) as JSON.
//!
//! The server streams it into the page as `self.__next_f.push([1, "..."])` calls: the
//! string parts of the chunks of type 1, joined, are rows `ID:PAYLOAD` separated by
//! newlines. A payload is JSON, JSON after a tag of capital letters (`I[...]`, module
//! references; `HL[...]`, hints), or a text row `T<hex byte length>,<text>` whose text
//! may hold newlines. The decoded document is the list of the rows' values in order;
//! `$`-prefixed strings (references between rows) are left as they are.

use serde_json::Value;

/// The name the chunks are pushed to.
pub const CHUNKS: [&str; 3] = ["self", "__next_f", "push"];

/// Flight data that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlightError {
    /// No chunk carried flight rows.
    #[error("no self.__next_f.push([1, \"...\"]) chunk carries flight data")]
    NoChunks,
    /// A row is cut short or is not JSON; the rows before it were kept.
    #[error("flight row {id:?} at byte {at} is not JSON: {reason}")]
    Row {
        /// The row id.
        id: String,
        /// Byte offset in the joined text.
        at: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The joined text of the chunks of type 1 among the pushed values.
///
/// # Errors
/// When no chunk is of type 1 with a string.
pub fn join_chunks(chunks: &[Value]) -> Result<String, FlightError> {
    let parts: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| match chunk.as_array()?.as_slice() {
            [kind, Value::String(text)] if kind.as_u64() == Some(1) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return Err(FlightError::NoChunks);
    }
    Ok(parts.concat())
}

/// The values of the rows of `text`, and the errors of rows that are not JSON.
pub fn decode(text: &str) -> (Vec<Value>, Vec<FlightError>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut at = 0;
    loop {
        // A text row ends at its length, a JSON row at a newline: skip the newlines.
        at += text[at..].len() - text[at..].trim_start_matches('\n').len();
        if at >= text.len() {
            break;
        }
        let rest = &text[at..];
        let Some(colon) = rest.find(':') else {
            if !rest.trim().is_empty() {
                errors.push(row_error("", at, "no row id"));
            }
            break;
        };
        let id = &rest[..colon];
        let payload_at = at + colon + 1;
        if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(row_error(id, at, "the row id is not hexadecimal"));
            break;
        }
        match row(text, payload_at) {
            Ok((value, next)) => {
                values.push(value);
                at = next;
            }
            Err((reason, next)) => {
                errors.push(row_error(id, at, &reason));
                at = next;
            }
        }
    }
    (values, errors)
}

fn row_error(id: &str, at: usize, reason: &str) -> FlightError {
    FlightError::Row {
        id: id.to_owned(),
        at,
        reason: reason.to_owned(),
    }
}

/// The value of the row whose payload starts at `at`, and where the next row starts.
fn row(text: &str, at: usize) -> Result<(Value, usize), (String, usize)> {
    let rest = &text[at..];
    if let Some(text_row) = rest.strip_prefix('T') {
        return text_value(text_row, at + 1);
    }
    let tag = rest.bytes().take_while(u8::is_ascii_uppercase).count();
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let next = at + line_end + 1;
    serde_json::from_str(&rest[tag..line_end])
        .map(|value| (value, next))
        .map_err(|error| (error.to_string(), next))
}

/// A `T` row after the `T`: `<hex length>,<text of that many bytes>`.
fn text_value(rest: &str, at: usize) -> Result<(Value, usize), (String, usize)> {
    let comma = rest
        .find(',')
        .ok_or(("a text row without its length".to_owned(), at + rest.len()))?;
    let length = usize::from_str_radix(&rest[..comma], 16).map_err(|_| {
        (
            "a text row length that is not hexadecimal".to_owned(),
            at + rest.len(),
        )
    })?;
    let start = comma + 1;
    let body = rest
        .get(start..start + length)
        .ok_or(("a text row cut short".to_owned(), at + rest.len()))?;
    Ok((Value::String(body.to_owned()), at + start + length))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn joins_type_one_chunks_only() {
        let chunks = [
            json!([0]),
            json!([1, "1:\"$Sreact"]),
            json!([2, "x"]),
            json!([1, ".fragment\"\n"]),
        ];
        assert_eq!(join_chunks(&chunks).unwrap(), "1:\"$Sreact.fragment\"\n");
        assert_eq!(join_chunks(&[json!([0])]), Err(FlightError::NoChunks));
    }

    #[test]
    fn decodes_json_tagged_and_text_rows() {
        let text = "1:\"$Sreact.fragment\"\n2:I[123,[],\"default\"]\n3:HL[\"/a.css\",\"style\"]\nc:T0c,two\nlines é4:[\"$\",\"div\",null,{\"listings\":[{\"id\":7}],\"total\":264}]\n";
        let (values, errors) = decode(text);
        assert_eq!(errors, []);
        assert_eq!(
            values,
            [
                json!("$Sreact.fragment"),
                json!([123, [], "default"]),
                json!(["/a.css", "style"]),
                json!("two\nlines é"),
                json!(["$", "div", null, {"listings": [{"id": 7}], "total": 264}]),
            ]
        );
    }

    #[test]
    fn a_broken_row_is_reported_and_the_others_kept() {
        let (values, errors) = decode("1:{\"a\":\n2:[2]\n");
        assert_eq!(values, [json!([2])]);
        assert!(matches!(&errors[..], [FlightError::Row { id, .. }] if id == "1"));
    }
}
