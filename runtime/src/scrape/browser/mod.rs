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
//!
//! `process` launches and stops one Chromium, `intercept` decides each request a tab
//! makes, and `page` loads a page in a tab and reads it; this module pools the browsers
//! and their tabs behind [`Fetcher`].

mod intercept;
mod page;
mod process;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homestream_crds::scrapejob::validate::ValidatedBrowser;
use tokio::time::timeout;
use url::Url;

use super::egress::{Egress, EgressPolicy};
use super::http::HttpClient;
use super::job::Job;
use super::page::{FetchError, FetchedPage, Fetcher, PageRequest};
use super::politeness::Failure;
use intercept::{LoadState, Policy};
use page::{LoadFailure, PageLoader, Tab, restart, retry};
use process::{Instance, Process};

pub use process::BrowserError;

/// Longest wait for one CDP call that is not a page load. Chromium answers within
/// milliseconds unless it is hung, and a hung browser must be found quickly.
const CDP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which Chromium to run and how many.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The executable (Debian's headless shell in the scraper image).
    pub executable: PathBuf,
    /// Browser processes the tabs are spread over.
    pub browsers: usize,
    /// Names the egress proxy answers without DNS, like entries of `/etc/hosts` (none
    /// in a pod; tests map names to their loopback server).
    pub hosts: HashMap<String, IpAddr>,
}

/// Debian's `chromium-headless-shell`, the binary rather than its `/usr/bin` wrapper,
/// which stays behind as an orphan when its Chromium is killed. It is Chromium's old
/// headless mode, without the full browser's UI layer: lighter and faster on every page,
/// and the browser of the scraper image.
pub const HEADLESS_SHELL: &str = "/usr/lib/chromium/chromium-headless-shell";

/// The full Chromium, used where the headless shell is not installed.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// [`HEADLESS_SHELL`] if installed, else [`CHROMIUM`].
pub fn default_executable() -> PathBuf {
    let shell = PathBuf::from(HEADLESS_SHELL);
    if shell.is_file() {
        shell
    } else {
        CHROMIUM.into()
    }
}

impl BrowserOptions {
    /// From `HOMESTREAM_CHROMIUM` (default [`default_executable`]) and
    /// `HOMESTREAM_BROWSERS` (default 1).
    pub fn from_env() -> Self {
        Self {
            executable: std::env::var_os("HOMESTREAM_CHROMIUM")
                .map_or_else(default_executable, PathBuf::from),
            browsers: std::env::var("HOMESTREAM_BROWSERS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1)
                .max(1),
            hosts: HashMap::new(),
        }
    }
}

/// The pool of tabs.
pub struct BrowserPool {
    http: Arc<HttpClient>,
    /// Window width and height of each browser.
    viewport: (u32, u32),
    user_agent: String,
    loader: PageLoader,
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
            viewport: settings.viewport,
            user_agent: job.user_agent.clone(),
            loader: PageLoader::new(job, settings),
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
                process.stop().await;
            }
        }
    }

    /// Launches a browser; the egress proxy all of them go through starts with the first.
    async fn launch(&self) -> Result<Process, BrowserError> {
        let egress = self
            .egress
            .get_or_try_init(|| Egress::start(self.policy.network.clone()))
            .await
            .map_err(|error| {
                BrowserError::launch(
                    &self.options.executable,
                    format!("starting the egress proxy: {error}"),
                )
            })?;
        Process::launch(
            &self.options.executable,
            self.viewport,
            &egress.proxy_server(),
        )
        .await
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
                    old.stop().await;
                }
                return Err(retry(url, reason));
            }
        };
        drop(process);
        let page = Arc::new(page);
        let state = Arc::new(Mutex::new(LoadState::default()));
        let events = intercept::watch(&page, &state, &self.policy)
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
            old.stop().await;
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
                loaded = self.loader.load(&tab, url, self.egress.get()) => loaded,
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

/// A CDP call with [`CDP_TIMEOUT`].
async fn cdp<T, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match timeout(CDP_TIMEOUT, call).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(format!("no answer within {CDP_TIMEOUT:?}")),
    }
}
