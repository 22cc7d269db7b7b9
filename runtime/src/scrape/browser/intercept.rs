//! Request interception in a tab: every request a page makes is paused and then failed
//! (a host the job does not allow, a blocked resource type, a path robots.txt
//! disallows) or let through once its host's slot of the per-host rate comes; the same
//! event task tracks the network for the idle wait and captures the responses the job
//! names. The egress proxy still checks the addresses of what is let through.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    self, EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
    GetResponseBodyParams,
};
use futures::StreamExt;
use homestream_crds::scrapejob::source::ResourceType;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

use super::cdp;
use crate::scrape::egress::EgressPolicy;
use crate::scrape::http::HttpClient;

/// The request policy each tab's interception applies.
pub(super) struct Policy {
    /// The allowed hosts (the egress proxy checks the addresses).
    pub(super) network: Arc<EgressPolicy>,
    pub(super) blocked: Vec<ResourceType>,
    /// robots.txt and the per-host rate.
    pub(super) http: Arc<HttpClient>,
    pub(super) captures: Vec<(String, regex::Regex)>,
}

/// What a tab's event task records during one page load.
#[derive(Debug, Default)]
pub(super) struct LoadState {
    pub(super) in_flight: HashSet<String>,
    /// Intercepted requests not yet let through or failed (they may wait for their
    /// host's slot, and the network is not idle meanwhile).
    pub(super) paused: HashSet<String>,
    pub(super) last_activity: Option<Instant>,
    pub(super) document_status: Option<i64>,
    /// The URL being navigated to, until its document request is seen: that request
    /// already waited for its slot before the navigation.
    pub(super) navigation: Option<String>,
    /// Network request id to capture name, for matching responses not finished yet.
    pub(super) pending_captures: HashMap<String, String>,
    pub(super) captured: HashMap<String, String>,
}

/// Starts the tab's interception and network tracking.
pub(super) async fn watch(
    page: &Arc<Page>,
    state: &Arc<Mutex<LoadState>>,
    policy: &Arc<Policy>,
) -> Result<JoinHandle<()>, String> {
    let mut paused = cdp(page.event_listener::<EventRequestPaused>()).await?;
    let mut sent = cdp(page.event_listener::<EventRequestWillBeSent>()).await?;
    let mut received = cdp(page.event_listener::<EventResponseReceived>()).await?;
    let mut finished = cdp(page.event_listener::<EventLoadingFinished>()).await?;
    let mut failed = cdp(page.event_listener::<EventLoadingFailed>()).await?;
    let pattern = RequestPattern {
        url_pattern: Some("*".into()),
        resource_type: None,
        request_stage: Some(RequestStage::Request),
    };
    cdp(page.execute(fetch::EnableParams {
        patterns: Some(vec![pattern]),
        handle_auth_requests: None,
    }))
    .await?;
    let (page, state, policy) = (page.clone(), state.clone(), policy.clone());
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                // Each request is decided on its own: one waiting for its host's
                // slot must not hold up the others or the network tracking.
                Some(event) = paused.next() => {
                    lock(&state).paused.insert(event.request_id.inner().clone());
                    tokio::spawn(intercept(page.clone(), policy.clone(), state.clone(), event));
                }
                Some(event) = sent.next() => {
                    let mut state = lock(&state);
                    state.in_flight.insert(event.request_id.inner().clone());
                    state.last_activity = Some(Instant::now());
                }
                Some(event) = received.next() => {
                    let mut state = lock(&state);
                    if event.r#type == network::ResourceType::Document && state.document_status.is_none() {
                        state.document_status = Some(event.response.status);
                    }
                    if let Some((name, _)) = policy.captures.iter().find(|(_, pattern)| pattern.is_match(&event.response.url)) {
                        state.pending_captures.insert(event.request_id.inner().clone(), name.clone());
                    }
                }
                Some(event) = finished.next() => {
                    let id = event.request_id.inner().clone();
                    let capture = lock(&state).pending_captures.get(&id).cloned();
                    // The body is read once loading finished: earlier it may be incomplete.
                    if let Some(name) = capture {
                        let body = cdp(page.execute(GetResponseBodyParams::new(event.request_id.clone()))).await;
                        // Chromium encodes only binary bodies in base64; a JSON document never is.
                        let body = body.ok().filter(|body| !body.result.base64_encoded).map(|body| body.result.body.clone());
                        let mut state = lock(&state);
                        state.pending_captures.remove(&id);
                        if let Some(body) = body {
                            state.captured.insert(name, body);
                        }
                    }
                    settle(&state, &id);
                }
                Some(event) = failed.next() => settle(&state, event.request_id.inner()),
                else => break,
            }
        }
    }))
}

/// The tab's load state, even if a task panicked while holding the lock.
pub(super) fn lock(state: &Mutex<LoadState>) -> std::sync::MutexGuard<'_, LoadState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn settle(state: &Mutex<LoadState>, id: &str) {
    let mut state = lock(state);
    state.in_flight.remove(id);
    state.last_activity = Some(Instant::now());
}

/// Lets a paused request through, after its host's slot, or fails it, by host,
/// resource type and robots.txt (the egress proxy checks its addresses).
async fn intercept(
    page: Arc<Page>,
    policy: Arc<Policy>,
    state: Arc<Mutex<LoadState>>,
    event: Arc<EventRequestPaused>,
) {
    let allowed = match Url::parse(&event.request.url) {
        Ok(url) if matches!(url.scheme(), "data" | "blob" | "about") => true,
        Ok(url) => {
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let allowed = policy.network.host_allowed(&host)
                && !blocked_type(&policy.blocked, &event.resource_type)
                && robots_allowed(&policy, &url).await;
            if allowed && !navigation(&state, &event) {
                policy.http.pace(&url).await;
            }
            allowed
        }
        Err(_) => false,
    };
    let result = if allowed {
        cdp(page.execute(ContinueRequestParams::new(event.request_id.clone())))
            .await
            .map(drop)
    } else {
        let fail = FailRequestParams::new(
            event.request_id.clone(),
            network::ErrorReason::BlockedByClient,
        );
        cdp(page.execute(fail)).await.map(drop)
    };
    if let Err(error) = result {
        tracing::debug!(url = event.request.url, %error, "Cannot answer an intercepted request.");
    }
    let mut state = lock(&state);
    state.paused.remove(event.request_id.inner());
    state.last_activity = Some(Instant::now());
}

/// Whether `event` is the document request of the navigation, which was paced before it.
fn navigation(state: &Mutex<LoadState>, event: &EventRequestPaused) -> bool {
    event.resource_type == network::ResourceType::Document
        && lock(state)
            .navigation
            .take_if(|url| *url == event.request.url)
            .is_some()
}

async fn robots_allowed(policy: &Policy, url: &Url) -> bool {
    match policy.http.admit(url).await {
        Ok(()) => true,
        Err(error) => {
            tracing::info!(%error, "Blocked a page request.");
            false
        }
    }
}

fn blocked_type(blocked: &[ResourceType], kind: &network::ResourceType) -> bool {
    use network::ResourceType as Cdp;
    blocked.iter().any(|blocked| match blocked {
        ResourceType::Image => matches!(kind, Cdp::Image),
        ResourceType::Font => matches!(kind, Cdp::Font),
        ResourceType::Media => matches!(kind, Cdp::Media | Cdp::TextTrack),
        ResourceType::Stylesheet => matches!(kind, Cdp::Stylesheet),
        ResourceType::Script => matches!(kind, Cdp::Script),
        ResourceType::Fetch => matches!(kind, Cdp::Fetch | Cdp::Xhr | Cdp::EventSource),
        ResourceType::WebSocket => matches!(kind, Cdp::WebSocket),
        ResourceType::Other => matches!(
            kind,
            Cdp::Other | Cdp::Ping | Cdp::Manifest | Cdp::Prefetch | Cdp::CspViolationReport
        ),
    })
}
