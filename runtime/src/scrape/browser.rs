//! The browser fetcher: a pool of tabs over one or more headless Chromium processes,
//! driven over the DevTools Protocol (chromiumoxide).
//!
//! Every request a page makes passes through `Fetch` interception: requests to hosts
//! the job does not allow, of blocked resource types, or that robots.txt disallows are
//! failed before Chromium connects, which also keeps a page that references dozens of
//! CDNs fast offline; the others wait for their host's slot of the per-host rate, like
//! the pages themselves. Chromium resolves no names and opens no connection itself: it
//! goes through the [`egress`](super::egress) proxy, which checks each connection's host
//! and addresses with the SSRF guard and connects to the checked address, so DNS cannot
//! be re-bound between the check and the connect (and WebSockets, which interception
//! does not see, are held to the same policy). Every CDP call has a timeout; a browser
//! whose call times out or whose DevTools connection breaks (noticed when it breaks,
//! not when a call times out) is killed and relaunched, and the page is retried with
//! the job's backoff.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    self, EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
    GetResponseBodyParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use homestream_crds::scrapejob::source::ResourceType;
use homestream_crds::scrapejob::validate::{DocumentSource, ValidatedBrowser, ValidatedItems};
use scraper::selector::ToCss;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use url::Url;

use super::egress::{Egress, EgressPolicy};
use super::http::HttpClient;
use super::job::Job;
use super::page::{FetchError, FetchedPage, Fetcher, PageRequest};
use super::politeness::Failure;

/// Longest wait for one CDP call that is not a page load. Chromium answers within
/// milliseconds unless it is hung, and a hung browser must be found quickly.
const CDP_TIMEOUT: Duration = Duration::from_secs(10);
/// Quiet time after which the network counts as idle (Puppeteer's `networkidle0`).
const NETWORK_IDLE: Duration = Duration::from_millis(500);
/// How often waits re-check their condition.
const POLL: Duration = Duration::from_millis(50);

/// A page could not be loaded in the browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// Chromium could not be launched.
    #[error("launching {path}: {reason}")]
    Launch {
        /// Executable.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Which Chromium to run and how many.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The executable (Debian's `/usr/bin/chromium` in the scraper image).
    pub executable: PathBuf,
    /// Browser processes the tabs are spread over.
    pub browsers: usize,
    /// Names the egress proxy answers without DNS, like entries of `/etc/hosts` (none
    /// in a pod; tests map names to their loopback server).
    pub hosts: HashMap<String, IpAddr>,
}

impl BrowserOptions {
    /// From `HOMESTREAM_CHROMIUM` (default `/usr/bin/chromium`) and
    /// `HOMESTREAM_BROWSERS` (default 1).
    pub fn from_env() -> Self {
        Self {
            executable: std::env::var_os("HOMESTREAM_CHROMIUM")
                .map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from),
            browsers: std::env::var("HOMESTREAM_BROWSERS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1)
                .max(1),
            hosts: HashMap::new(),
        }
    }
}

/// A failed page load, and whether the browser must be restarted for it.
struct LoadFailure {
    failure: Failure,
    restart: bool,
}

impl From<Failure> for LoadFailure {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            restart: false,
        }
    }
}

/// A running Chromium.
struct Process {
    browser: Browser,
    handler: JoinHandle<()>,
    /// Becomes true when the DevTools connection is gone (the browser died).
    closed: watch::Receiver<bool>,
    profile: PathBuf,
}

/// One browser slot of the pool; `generation` counts its restarts so that tabs of a
/// dead browser are recognised and dropped.
struct Instance {
    process: tokio::sync::Mutex<Option<Process>>,
    generation: AtomicU64,
}

/// What a tab's event task records during one page load.
#[derive(Debug, Default)]
struct LoadState {
    in_flight: HashSet<String>,
    /// Intercepted requests not yet let through or failed (they may wait for their
    /// host's slot, and the network is not idle meanwhile).
    paused: HashSet<String>,
    last_activity: Option<Instant>,
    document_status: Option<i64>,
    /// The URL being navigated to, until its document request is seen: that request
    /// already waited for its slot before the navigation.
    navigation: Option<String>,
    /// Network request id to capture name, for matching responses not finished yet.
    pending_captures: HashMap<String, String>,
    captured: HashMap<String, String>,
}

/// A tab with its interception and network-tracking task.
struct Tab {
    page: Arc<Page>,
    state: Arc<Mutex<LoadState>>,
    events: JoinHandle<()>,
    instance: usize,
    generation: u64,
    /// Its browser's [`Process::closed`].
    closed: watch::Receiver<bool>,
}

impl Tab {
    /// Waits until the browser's DevTools connection is gone.
    async fn closed(&self) {
        // An error means the handler task is gone too: closed as well.
        let _ = self.closed.clone().wait_for(|closed| *closed).await;
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// The request policy each tab's interception applies.
struct Policy {
    /// The allowed hosts (the egress proxy checks the addresses).
    network: Arc<EgressPolicy>,
    blocked: Vec<ResourceType>,
    /// robots.txt and the per-host rate.
    http: Arc<HttpClient>,
    captures: Vec<(String, regex::Regex)>,
}

/// The pool of tabs.
pub struct BrowserPool {
    http: Arc<HttpClient>,
    settings: ValidatedBrowser,
    user_agent: String,
    expressions: Vec<String>,
    options: BrowserOptions,
    policy: Arc<Policy>,
    /// Started with the first browser, shared by all.
    egress: tokio::sync::OnceCell<Egress>,
    instances: Vec<Instance>,
    idle: Mutex<Vec<Tab>>,
    next_instance: AtomicUsize,
}

impl std::fmt::Debug for BrowserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPool")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BrowserPool {
    /// A pool for `job`, whose browsers start on first use. `http` supplies robots.txt,
    /// the SSRF guard, the per-host rate and the retry policy.
    pub fn new(
        job: &Job,
        settings: &ValidatedBrowser,
        http: Arc<HttpClient>,
        options: BrowserOptions,
    ) -> Self {
        let mut expressions = Vec::new();
        let documents = [
            match &job.spec.extract.items {
                ValidatedItems::Json { from, .. } => Some(from),
                ValidatedItems::Css(_) => None,
            },
            job.spec
                .detail_pages
                .as_ref()
                .and_then(|detail| detail.from.as_ref()),
        ];
        for document in documents.into_iter().flatten() {
            if let DocumentSource::Expression(expression) = document {
                expressions.push(expression.clone());
            }
        }
        let policy = Arc::new(Policy {
            network: Arc::new(EgressPolicy {
                allowed_hosts: settings.allowed_hosts.clone(),
                guard: http.guard(),
                hosts: options.hosts.clone(),
            }),
            blocked: settings.block_resource_types.clone(),
            http: http.clone(),
            captures: settings.capture_responses.clone(),
        });
        Self {
            instances: (0..options.browsers)
                .map(|_| Instance {
                    process: tokio::sync::Mutex::new(None),
                    generation: AtomicU64::new(0),
                })
                .collect(),
            http,
            settings: settings.clone(),
            user_agent: job.user_agent.clone(),
            expressions,
            options,
            policy,
            egress: tokio::sync::OnceCell::new(),
            idle: Mutex::new(Vec::new()),
            next_instance: AtomicUsize::new(0),
        }
    }

    /// Closes every tab and browser and removes their profiles.
    pub async fn close(&self) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        for instance in &self.instances {
            if let Some(process) = instance.process.lock().await.take() {
                stop(process).await;
            }
        }
    }

    async fn launch(&self) -> Result<Process, BrowserError> {
        let profile = std::env::temp_dir().join(format!(
            "homestream-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let (width, height) = self.settings.viewport;
        let launch_error = |reason: String| BrowserError::Launch {
            path: self.options.executable.display().to_string(),
            reason,
        };
        let egress = self
            .egress
            .get_or_try_init(|| Egress::start(self.policy.network.clone()))
            .await
            .map_err(|error| launch_error(format!("starting the egress proxy: {error}")))?;
        let config = BrowserConfig::builder()
            .chrome_executable(&self.options.executable)
            .user_data_dir(&profile)
            .no_sandbox()
            .request_timeout(CDP_TIMEOUT)
            .launch_timeout(CDP_TIMEOUT)
            .window_size(width, height)
            .viewport(Viewport {
                width,
                height,
                ..Viewport::default()
            })
            // The flags a closed network needs: nothing phones home at start. (Names
            // without dashes: chromiumoxide adds them.)
            .args([
                "disable-gpu",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "no-first-run",
                "disable-quic",
                "disable-dev-shm-usage",
            ])
            // Every connection through the egress proxy, loopback included (Chromium
            // bypasses proxies for loopback unless told `<-loopback>`), and WebRTC may
            // not send UDP around it.
            .arg(("proxy-server", egress.proxy_server().as_str()))
            .arg(("proxy-bypass-list", "<-loopback>"))
            .arg(("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"))
            .build()
            .map_err(launch_error)?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .map_err(|error| launch_error(error.to_string()))?;
        let (closing, closed) = watch::channel(false);
        let handler = tokio::spawn(async move {
            // The handler reports a broken websocket once and then stays pending, so
            // that error rather than the end of the stream marks the browser as gone.
            while let Some(event) = handler.next().await {
                if let Err(CdpError::Ws(error)) = event {
                    tracing::warn!(%error, "The browser's DevTools connection closed.");
                    break;
                }
            }
            let _ = closing.send(true);
        });
        Ok(Process {
            browser,
            handler,
            closed,
            profile,
        })
    }

    /// An idle tab of a live browser, or a new one (to load `url`).
    async fn acquire(&self, url: &Url) -> Result<Tab, Failure> {
        loop {
            let tab = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            match tab {
                Some(tab)
                    if tab.generation
                        == self.instances[tab.instance]
                            .generation
                            .load(Ordering::Acquire) =>
                {
                    return Ok(tab);
                }
                Some(_stale) => continue,
                None => break,
            }
        }
        let index = self.next_instance.fetch_add(1, Ordering::Relaxed) % self.instances.len();
        let instance = &self.instances[index];
        let mut process = instance.process.lock().await;
        if process.is_none() {
            *process = Some(
                self.launch()
                    .await
                    .map_err(|error| retry(url, error.to_string()))?,
            );
        }
        let generation = instance.generation.load(Ordering::Acquire);
        let Some((browser, closed)) = process
            .as_ref()
            .map(|process| (&process.browser, process.closed.clone()))
        else {
            return Err(retry(url, "no browser".into()));
        };
        let page = match cdp(browser.new_page("about:blank")).await {
            Ok(page) => page,
            Err(reason) => {
                // A browser that cannot open a tab is dead or hung.
                instance.generation.fetch_add(1, Ordering::AcqRel);
                if let Some(old) = process.take() {
                    self.http.metrics().browser_restart();
                    stop(old).await;
                }
                return Err(retry(url, reason));
            }
        };
        drop(process);
        let page = Arc::new(page);
        let state = Arc::new(Mutex::new(LoadState::default()));
        let events = self
            .watch(&page, &state)
            .await
            .map_err(|reason| retry(url, reason))?;
        cdp(page.set_user_agent(self.user_agent.as_str()))
            .await
            .map_err(|reason| retry(url, reason))?;
        Ok(Tab {
            page,
            state,
            events,
            instance: index,
            generation,
            closed,
        })
    }

    /// Starts the tab's interception and network tracking.
    async fn watch(
        &self,
        page: &Arc<Page>,
        state: &Arc<Mutex<LoadState>>,
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
        let (page, state, policy) = (page.clone(), state.clone(), self.policy.clone());
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

    async fn load(&self, tab: &Tab, url: &Url) -> Result<FetchedPage, LoadFailure> {
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
                let refused = url
                    .host_str()
                    .and_then(|host| self.egress.get()?.refusal(host));
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
            while !self
                .evaluate(tab, url, &probe)
                .await?
                .as_bool()
                .unwrap_or(false)
            {
                if Instant::now() >= deadline {
                    return Err(retry(
                        url,
                        format!(
                            "no element matched {selector} within {:?}",
                            self.settings.wait_timeout
                        ),
                    )
                    .into());
                }
                sleep(POLL).await;
            }
        }
        let captures_wanted = !self.policy.captures.is_empty();
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
            if Instant::now() >= deadline {
                return Err(retry(
                    url,
                    format!(
                        "the network was not idle within {:?}",
                        self.settings.wait_timeout
                    ),
                )
                .into());
            }
            sleep(POLL).await;
        }
        let mut expressions = HashMap::new();
        for expression in &self.expressions {
            let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
            let value = self.evaluate(tab, url, &wrapped).await?;
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

    async fn evaluate(&self, tab: &Tab, url: &Url, expression: &str) -> Result<Value, LoadFailure> {
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
        let result = cdp(tab.page.execute(params))
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

    /// Kills and forgets the browser of `tab` (if nobody restarted it already).
    async fn restart(&self, tab: Tab) {
        let instance = &self.instances[tab.instance];
        let mut process = instance.process.lock().await;
        if instance.generation.load(Ordering::Acquire) != tab.generation {
            return;
        }
        instance.generation.fetch_add(1, Ordering::AcqRel);
        drop(tab);
        if let Some(old) = process.take() {
            tracing::warn!("Restarting a browser that failed.");
            self.http.metrics().browser_restart();
            stop(old).await;
        }
    }
}

impl Fetcher for BrowserPool {
    async fn fetch(&self, request: &PageRequest) -> Result<FetchedPage, FetchError> {
        let url = &request.url;
        self.http.admit(url).await?;
        self.policy
            .network
            .check_address(url)
            .await
            .map_err(|source| FetchError::Refused {
                url: url.clone(),
                source,
            })?;
        let attempt = || async {
            let tab = self.acquire(url).await?;
            // After the tab is ready: a browser launch takes longer than a slot, and a
            // slot taken before it would let the page's own requests follow at once.
            self.http.pace(url).await;
            let loaded = tokio::select! {
                // First: the handler says so before the calls it leaves fail.
                biased;
                () = tab.closed() => Err(restart(url, "the browser's DevTools connection closed".into())),
                loaded = self.load(&tab, url) => loaded,
            };
            match loaded {
                Ok(page) => {
                    self.idle
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(tab);
                    Ok(page)
                }
                Err(LoadFailure {
                    failure,
                    restart: true,
                }) => {
                    self.restart(tab).await;
                    Err(failure)
                }
                Err(LoadFailure {
                    failure,
                    restart: false,
                }) => {
                    // A tab left mid-load may still be busy; close it rather than reuse it.
                    let _ = cdp(tab.page.execute(
                        chromiumoxide::cdp::browser_protocol::page::CloseParams::default(),
                    ))
                    .await;
                    Err(failure)
                }
            }
        };
        let page = self.http.retry().run(self.http.metrics(), attempt).await?;
        self.http.metrics().page_fetched();
        Ok(page)
    }
}

/// A failure after which the browser is restarted.
fn restart(url: &Url, reason: String) -> LoadFailure {
    LoadFailure {
        failure: Failure::Retry(
            FetchError::Browser {
                url: url.clone(),
                reason,
            },
            None,
        ),
        restart: true,
    }
}

fn retry(url: &Url, reason: String) -> Failure {
    Failure::Retry(
        FetchError::Browser {
            url: url.clone(),
            reason,
        },
        None,
    )
}

/// A CDP call with [`CDP_TIMEOUT`].
async fn cdp<T, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match timeout(CDP_TIMEOUT, call).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(format!("no answer within {CDP_TIMEOUT:?}")),
    }
}

fn lock(state: &Mutex<LoadState>) -> std::sync::MutexGuard<'_, LoadState> {
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

async fn stop(mut process: Process) {
    // close() asks politely; kill() makes sure, since a hung browser ignores the request.
    let _ = timeout(CDP_TIMEOUT, process.browser.close()).await;
    let _ = timeout(CDP_TIMEOUT, process.browser.kill()).await;
    let _ = timeout(CDP_TIMEOUT, process.browser.wait()).await;
    process.handler.abort();
    remove_profile(&process.profile);
}

fn remove_profile(profile: &Path) {
    if let Err(error) = std::fs::remove_dir_all(profile) {
        tracing::debug!(profile = %profile.display(), %error, "Cannot remove a browser profile.");
    }
}
