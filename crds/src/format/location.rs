//! Object storage locations: where a Delta table lives.

use super::string_format;

string_format! {
    /// An S3 location, `s3://bucket/prefix`: a bucket name (3 to 63 lower-case letters,
    /// digits, `.` and `-`) and a prefix of letters, digits, `/`, `_`, `-`, `.` and `=`
    /// (no `+`, which some S3-compatible servers mishandle in listings, and no `//`).
    S3Location,
    max_length = 1024,
    rules = [(
        "self.matches('^s3a?://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.=-]+)*/?$')",
        "must be s3://bucket/prefix: a lower-case bucket name, then a path of letters, digits, '/', '_', '-', '.' and '='"
    )]
}

impl S3Location {
    /// The bucket and the prefix within it (no leading or trailing `/`; empty at the root).
    pub fn bucket_and_prefix(&self) -> (&str, &str) {
        let rest = self
            .0
            .split_once("://")
            .map_or(self.0.as_str(), |(_, rest)| rest);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (bucket, prefix.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_prefix_split_the_location() {
        let location = S3Location::from("s3://lake/listings/clean/");
        assert_eq!(location.bucket_and_prefix(), ("lake", "listings/clean"));
        assert_eq!(
            S3Location::from("s3://lake").bucket_and_prefix(),
            ("lake", "")
        );
    }
}
