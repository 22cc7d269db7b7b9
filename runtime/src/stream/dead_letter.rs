//! Dead-letter records: the original key, payload and headers, plus headers saying
//! why the record failed and where it came from, so it can be inspected and replayed.

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;

/// Header with the error that sent the record here.
pub const ERROR_HEADER: &str = "homestream.error";
/// Header with the topic the record was read from.
pub const SOURCE_TOPIC_HEADER: &str = "homestream.source.topic";
/// Header with the partition the record was read from.
pub const SOURCE_PARTITION_HEADER: &str = "homestream.source.partition";
/// Header with the offset the record was read at.
pub const SOURCE_OFFSET_HEADER: &str = "homestream.source.offset";
/// Header with the hash of the VRL program that failed (transforms only).
pub const PROGRAM_HASH_HEADER: &str = "homestream.program.hash";

/// The headers of the dead-letter copy of `message`: its own, then the failure's.
pub fn headers(message: &impl Message, error: &str, program_hash: Option<&str>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    let mut failure = vec![
        (ERROR_HEADER, error),
        (SOURCE_TOPIC_HEADER, message.topic()),
        (SOURCE_PARTITION_HEADER, partition.as_str()),
        (SOURCE_OFFSET_HEADER, offset.as_str()),
    ];
    if let Some(hash) = program_hash {
        failure.push((PROGRAM_HASH_HEADER, hash));
    }
    for (key, value) in failure {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}

/// The dead-letter copy of `message` for `topic`: its key and payload, and
/// [`headers`] with `error`.
pub fn record<'m>(
    message: &'m impl Message,
    topic: &'m str,
    error: &str,
) -> FutureRecord<'m, [u8], [u8]> {
    let mut record = FutureRecord::to(topic).headers(headers(message, error, None));
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    record
}
