//! Why object storage failed, as the condition reason users act on: the bucket does
//! not exist, the credentials are refused, or the service cannot be reached (or
//! answers with an error of its own). `deltalake` wraps `object_store`'s errors, and
//! its log reader sometimes only their text, so both the typed error and the words S3
//! answers with are looked for along the error's chain.

use std::error::Error;

use deltalake::ObjectStoreError;

/// What kind of storage failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFailure {
    /// The bucket of the location does not exist.
    BucketNotFound,
    /// The service refused the credentials or their rights.
    AccessDenied,
    /// The service is unreachable, timed out, or failed otherwise.
    Unavailable,
}

/// Error codes S3 answers with when a request's credentials are refused; versitygw
/// answers an unknown access key with its own code (and a 404).
const ACCESS_DENIED_CODES: [&str; 6] = [
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "XAdminUserNotFound",
];

impl StorageFailure {
    /// Classifies `error` from its chain of sources.
    pub fn of(error: &(dyn Error + 'static)) -> Self {
        let mut chain = String::new();
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(
                ObjectStoreError::PermissionDenied { .. }
                | ObjectStoreError::Unauthenticated { .. },
            ) = error.downcast_ref::<ObjectStoreError>()
            {
                return Self::AccessDenied;
            }
            chain.push_str(&error.to_string());
            chain.push('\n');
            current = error.source();
        }
        Self::of_text(&chain)
    }

    /// Classifies an error by the words of its messages.
    fn of_text(text: &str) -> Self {
        if text.contains("NoSuchBucket") {
            Self::BucketNotFound
        } else if ACCESS_DENIED_CODES.iter().any(|code| text.contains(code))
            || text.contains("403 Forbidden")
        {
            Self::AccessDenied
        } else {
            Self::Unavailable
        }
    }

    /// The condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BucketNotFound => "BucketNotFound",
            Self::AccessDenied => "AccessDenied",
            Self::Unavailable => "StorageUnavailable",
        }
    }

    /// What the user can do about it, for the condition message.
    pub fn advice(self) -> &'static str {
        match self {
            Self::BucketNotFound => "create the bucket, or fix the location",
            Self::AccessDenied => {
                "the operator's identity must be allowed to list, read and write the location"
            }
            Self::Unavailable => "retrying with backoff",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose chain holds `message` under a wrapper, as `deltalake` returns them.
    #[derive(Debug, thiserror::Error)]
    #[error("reading the table")]
    struct Wrapped(#[source] Box<dyn Error + Send + Sync>);

    fn wrapped(message: &str) -> Wrapped {
        Wrapped(message.into())
    }

    #[test]
    fn typed_refusals_are_access_denied() {
        let refused = Wrapped(Box::new(ObjectStoreError::PermissionDenied {
            path: "lake/listings/_delta_log".to_owned(),
            source: "no".into(),
        }));
        assert_eq!(StorageFailure::of(&refused), StorageFailure::AccessDenied);
        let unauthenticated = ObjectStoreError::Unauthenticated {
            path: "lake".to_owned(),
            source: "no".into(),
        };
        assert_eq!(
            StorageFailure::of(&unauthenticated),
            StorageFailure::AccessDenied
        );
    }

    #[test]
    fn s3_error_codes_in_the_text_are_recognised() {
        for (text, failure) in [
            (
                "Client error with status 404 Not Found: <Code>NoSuchBucket</Code>",
                StorageFailure::BucketNotFound,
            ),
            (
                "<Error><Code>InvalidAccessKeyId</Code></Error>",
                StorageFailure::AccessDenied,
            ),
            (
                "<Code>SignatureDoesNotMatch</Code>",
                StorageFailure::AccessDenied,
            ),
            (
                "404 Not Found: <Error><Code>XAdminUserNotFound</Code></Error>",
                StorageFailure::AccessDenied,
            ),
            (
                "Error after 2 retries in 312ms, max_retries:2, retry_timeout:10s, source:error \
                 sending request for url (http://127.0.0.1:9/homestream?list-type=2)",
                StorageFailure::Unavailable,
            ),
        ] {
            assert_eq!(StorageFailure::of(&wrapped(text)), failure, "{text}");
        }
    }

    #[test]
    fn reasons_are_camel_case() {
        assert_eq!(StorageFailure::Unavailable.reason(), "StorageUnavailable");
        assert_eq!(StorageFailure::BucketNotFound.reason(), "BucketNotFound");
        assert_eq!(StorageFailure::AccessDenied.reason(), "AccessDenied");
    }
}
