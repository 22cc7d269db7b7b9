//! Loading a page in a tab and reading it: the navigation, the waits of the job's
//! browser source (an element, network idle, the captured responses), the JavaScript
//! expressions its extraction reads, and which failures restart the browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use homestream_crds::scrapejob::validate::{DocumentSource, ValidatedBrowser};
use scraper::selector::ToCss;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use url::Url;

use super::cdp;
use super::intercept::{LoadState, lock};
use crate::scrape::egress::Egress;
use crate::scrape::job::Job;
use crate::scrape::page::{FetchError, FetchedPage};
use crate::scrape::politeness::Failure;

/// Quiet time after which the network counts as idle (Puppeteer's `networkidle0`).
const NETWORK_IDLE: Duration = Duration::from_millis(500);
/// How often waits re-check their condition.
const POLL: Duration = Duration::from_millis(50);

/// A tab with its interception and network-tracking task.
pub(super) struct Tab {
    pub(super) page: Arc<Page>,
    pub(super) state: Arc<Mutex<LoadState>>,
    pub(super) events: JoinHandle<()>,
    pub(super) instance: usize,
    pub(super) generation: u64,
    /// Its browser's [`Process::closed`](super::process::Process::closed).
    pub(super) closed: watch::Receiver<bool>,
}

impl Tab {
    /// Waits until the browser's DevTools connection is gone.
    pub(super) async fn closed(&self) {
        // An error means the handler task is gone too: closed as well.
        let _ = self.closed.clone().wait_for(|closed| *closed).await;
    }

    /// The value of `expression`, awaited if it is a promise.
    async fn evaluate(&self, url: &Url, expression: &str) -> Result<Value, LoadFailure> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(|reason| {
                Failure::Fatal(FetchError::Browser {
                    url: url.clone(),
                    reason,
                })
            })?;
        let result = cdp(self.page.execute(params))
            .await
            .map_err(|reason| restart(url, reason))?;
        if let Some(exception) = &result.result.exception_details {
            let reason = format!("the expression threw: {}", exception.text);
            return Err(Failure::Fatal(FetchError::Browser {
                url: url.clone(),
                reason,
            })
            .into());
        }
        Ok(result.result.result.value.clone().unwrap_or(Value::Null))
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// A failed page load, and whether the browser must be restarted for it.
pub(super) struct LoadFailure {
    pub(super) failure: Failure,
    pub(super) restart: bool,
}

impl From<Failure> for LoadFailure {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            restart: false,
        }
    }
}

/// How the job's pages load: the waits of its browser source and the JavaScript
/// expressions its extraction reads.
pub(super) struct PageLoader {
    settings: ValidatedBrowser,
    expressions: Vec<String>,
}

impl PageLoader {
    /// The loader of `job`'s pages in the browser `settings` describe.
    pub(super) fn new(job: &Job, settings: &ValidatedBrowser) -> Self {
        let expressions = job
            .spec
            .document_sources()
            .filter_map(|document| match document {
                DocumentSource::Expression(expression) => Some(expression.clone()),
                _ => None,
            })
            .collect();
        Self {
            settings: settings.clone(),
            expressions,
        }
    }

    /// Loads `url` in `tab` and reads it once the waits are over; `egress`, the proxy
    /// if it started, tells why a navigation was refused.
    pub(super) async fn load(
        &self,
        tab: &Tab,
        url: &Url,
        egress: Option<&Egress>,
    ) -> Result<FetchedPage, LoadFailure> {
        *lock(&tab.state) = LoadState {
            navigation: Some(url.as_str().to_owned()),
            ..LoadState::default()
        };
        let deadline = Instant::now() + self.settings.wait_timeout;
        let navigation = timeout(self.settings.wait_timeout, tab.page.goto(url.as_str())).await;
        match navigation {
            // A page that does not load in time may be a hung renderer: start afresh.
            Err(_) => {
                return Err(restart(
                    url,
                    format!(
                        "the page did not load within {:?}",
                        self.settings.wait_timeout
                    ),
                ));
            }
            Ok(Err(error)) => {
                // The proxy's refusal says more than Chromium's generic socket error.
                let refused = url.host_str().and_then(|host| egress?.refusal(host));
                return Err(match refused {
                    Some(source) => Failure::Fatal(FetchError::Refused {
                        url: url.clone(),
                        source,
                    }),
                    None => retry(url, format!("navigating: {error}")),
                }
                .into());
            }
            Ok(Ok(_)) => {}
        }
        let status = lock(&tab.state).document_status;
        if let Some(status) = status.and_then(|status| u16::try_from(status).ok()) {
            let status = reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::OK);
            if !status.is_success() {
                let error = FetchError::Status {
                    url: url.clone(),
                    status,
                };
                return Err(if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
                {
                    Failure::Retry(error, None)
                } else {
                    Failure::Fatal(error)
                }
                .into());
            }
        }
        if let Some(selector) = &self.settings.wait_selector {
            let selector = selector.to_css_string();
            let probe = format!(
                "document.querySelector({}) !== null",
                Value::String(selector.clone())
            );
            while !tab.evaluate(url, &probe).await?.as_bool().unwrap_or(false) {
                self.poll(deadline, url, || format!("no element matched {selector}"))
                    .await?;
            }
        }
        let captures_wanted = !self.settings.capture_responses.is_empty();
        loop {
            let (idle, captures_pending) = {
                let state = lock(&tab.state);
                let quiet = state
                    .last_activity
                    .is_none_or(|at| at.elapsed() >= NETWORK_IDLE);
                (
                    state.in_flight.is_empty() && state.paused.is_empty() && quiet,
                    !state.pending_captures.is_empty(),
                )
            };
            let waiting =
                (self.settings.wait_network_idle && !idle) || (captures_wanted && captures_pending);
            if !waiting {
                break;
            }
            self.poll(deadline, url, || "the network was not idle".to_owned())
                .await?;
        }
        let mut expressions = HashMap::new();
        for expression in &self.expressions {
            let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
            let value = tab.evaluate(url, &wrapped).await?;
            if let Some(json) = value
                .as_str()
                .and_then(|text| serde_json::from_str(text).ok())
            {
                expressions.insert(expression.clone(), json);
            }
        }
        let body = cdp(tab.page.content())
            .await
            .map_err(|reason| restart(url, reason))?;
        let responses = lock(&tab.state).captured.clone();
        let final_url = cdp(tab.page.url())
            .await
            .ok()
            .flatten()
            .and_then(|u| Url::parse(&u).ok());
        Ok(FetchedPage {
            url: final_url.or_else(|| Some(url.clone())),
            body,
            expressions,
            responses,
        })
    }

    /// Waits one [`POLL`] before a wait re-checks its condition, or fails the load once
    /// `deadline` has passed, saying what did not happen in time.
    async fn poll(
        &self,
        deadline: Instant,
        url: &Url,
        what: impl FnOnce() -> String,
    ) -> Result<(), LoadFailure> {
        if Instant::now() >= deadline {
            let reason = format!("{} within {:?}", what(), self.settings.wait_timeout);
            return Err(retry(url, reason).into());
        }
        sleep(POLL).await;
        Ok(())
    }
}

/// A failure after which the browser is restarted.
pub(super) fn restart(url: &Url, reason: String) -> LoadFailure {
    LoadFailure {
        failure: retry(url, reason),
        restart: true,
    }
}

/// A browser failure after which the page is retried with the job's backoff.
pub(super) fn retry(url: &Url, reason: String) -> Failure {
    Failure::Retry(
        FetchError::Browser {
            url: url.clone(),
            reason,
        },
        None,
    )
}
