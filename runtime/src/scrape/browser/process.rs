//! Launching and owning one Chromium: the flags that keep it on a closed network behind
//! the egress proxy, the task that notices its DevTools connection break, and stopping
//! it with its profile removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use chromiumoxide::error::CdpError;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::CDP_TIMEOUT;

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

impl BrowserError {
    /// `executable` could not be launched, for `reason`.
    pub(super) fn launch(executable: &Path, reason: String) -> Self {
        Self::Launch {
            path: executable.display().to_string(),
            reason,
        }
    }
}

/// A running Chromium.
pub(super) struct Process {
    pub(super) browser: Browser,
    handler: JoinHandle<()>,
    /// Becomes true when the DevTools connection is gone (the browser died).
    pub(super) closed: watch::Receiver<bool>,
    profile: PathBuf,
}

/// One browser slot of the pool; `generation` counts its restarts so that tabs of a
/// dead browser are recognised and dropped.
pub(super) struct Instance {
    pub(super) process: tokio::sync::Mutex<Option<Process>>,
    pub(super) generation: AtomicU64,
}

impl Process {
    /// Launches `executable` with a new profile and a `(width, height)` window, every
    /// connection going through the egress proxy at `proxy_server`.
    pub(super) async fn launch(
        executable: &Path,
        (width, height): (u32, u32),
        proxy_server: &str,
    ) -> Result<Self, BrowserError> {
        let profile = std::env::temp_dir().join(format!(
            "homestream-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let launch_error = |reason: String| BrowserError::launch(executable, reason);
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
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
            .arg(("proxy-server", proxy_server))
            .arg(("proxy-bypass-list", "<-loopback>"))
            .arg(("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"))
            // Lighter: each renderer process of Chromium counts some 150-250 MiB, and
            // by default every tab gets its own. Two renderers hold all the tabs of a
            // site (site isolation still gives other sites their own), which on the
            // fixture benchmark (8 tabs) cut the peak memory from 1.7 GiB to 0.85 GiB at
            // the same pages per second; one renderer was slower, its main thread
            // being the bottleneck. The GPU thread runs in the browser process rather
            // than in a process of its own (nothing is drawn on a GPU headless), and
            // the back-forward cache, which keeps each left page alive in case the
            // user goes back, is off: the scraper never goes back.
            .arg(("renderer-process-limit", "2"))
            .arg("in-process-gpu")
            .arg(("disable-features", "BackForwardCache"))
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
        Ok(Self {
            browser,
            handler,
            closed,
            profile,
        })
    }

    /// Ends the browser and removes its profile.
    pub(super) async fn stop(mut self) {
        // close() asks politely; kill() makes sure, since a hung browser ignores the request.
        let _ = timeout(CDP_TIMEOUT, self.browser.close()).await;
        let _ = timeout(CDP_TIMEOUT, self.browser.kill()).await;
        let _ = timeout(CDP_TIMEOUT, self.browser.wait()).await;
        self.handler.abort();
        remove_profile(&self.profile);
    }
}

fn remove_profile(profile: &Path) {
    if let Err(error) = std::fs::remove_dir_all(profile) {
        tracing::debug!(profile = %profile.display(), %error, "Cannot remove a browser profile.");
    }
}
