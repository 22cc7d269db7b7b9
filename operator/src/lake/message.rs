//! Condition messages from storage errors that stay the same while the failure does.
//! `object_store` writes how long a request took, and S3 error bodies carry a fresh
//! request id each time: in a message, either would change the status on every
//! reconcile, and every status change wakes the controller again at once, bypassing
//! the backoff.

use std::sync::LazyLock;

use regex::Regex;

/// `in 934.37µs`, `in 2.1s`: how long a request took.
static DURATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" in [0-9]+(\.[0-9]+)?(ns|µs|us|ms|s)\b").expect("a valid regex"));

/// An S3 error body: `<?xml ...?><Error><Code>..</Code><Message>..</Message>...</Error>`.
static ERROR_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)(<\?xml[^>]*\?>\s*)?<Error>.*?</Error>").expect("a valid regex")
});

/// A tag's text in an S3 error body.
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<Code>(.*?)</Code>").expect("a valid regex"));
static MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<Message>(.*?)</Message>").expect("a valid regex"));

/// `text` without request durations, and with each S3 error body reduced to its code
/// and message (no request or host id).
pub fn stable(text: &str) -> String {
    let text = DURATION.replace_all(text, "");
    ERROR_BODY
        .replace_all(&text, |body: &regex::Captures<'_>| {
            let tag = |tag: &Regex| {
                tag.captures(&body[0])
                    .map(|found| found[1].trim().to_owned())
            };
            match (tag(&CODE), tag(&MESSAGE)) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code,
                _ => "an S3 error".to_owned(),
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_request_ids_are_left_out() {
        let refused = "Error performing GET http://10.87.0.1:17080/homestream?list-type=2 in \
            934.37µs - Server returned non-2xx status code: 404 Not Found: \
            <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>XAdminUserNotFound</Code>\
            <Message>No user exists with the provided access key ID.</Message>\
            <RequestId>6VBNZO0JY606SHSD</RequestId><HostId>/yVGL0rCvp/jz9g=</HostId></Error>";
        assert_eq!(
            stable(refused),
            "Error performing GET http://10.87.0.1:17080/homestream?list-type=2 - Server \
             returned non-2xx status code: 404 Not Found: XAdminUserNotFound: No user exists \
             with the provided access key ID."
        );
        let unreachable = "Error performing GET http://127.0.0.1:9/homestream in 256.375476ms, \
            after 2 retries, max_retries: 2, retry_timeout: 10s";
        assert_eq!(
            stable(unreachable),
            "Error performing GET http://127.0.0.1:9/homestream, after 2 retries, \
             max_retries: 2, retry_timeout: 10s"
        );
    }

    #[test]
    fn what_is_already_stable_is_kept() {
        let text = "table s3://homestream/lake/listings lacks declared columns postcode";
        assert_eq!(stable(text), text);
    }
}
