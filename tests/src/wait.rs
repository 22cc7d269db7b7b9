//! Polling until something the servers report becomes true, with a deadline.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};

/// Polls `probe` every 250 ms until it returns `Some`, failing after `timeout` with
/// `what` and the last value `describe` gave (so a failure says what was seen).
///
/// # Errors
/// On timeout, or when `probe` fails.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await? {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
