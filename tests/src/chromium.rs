//! Launching the stack's Debian Chromium headless through chromiumoxide.

use anyhow::{Context, Result};
use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::{StackEnv, random_name};

/// A headless browser and the task that drives its CDP connection.
pub struct HeadlessBrowser {
    /// The chromiumoxide browser handle.
    pub browser: Browser,
    handler: JoinHandle<()>,
    user_data_dir: std::path::PathBuf,
}

impl HeadlessBrowser {
    /// Launches Chromium with a fresh profile and the flags a closed network needs
    /// (no background networking, component updates or sync, which would otherwise
    /// try to reach Google's hosts at every start).
    ///
    /// # Errors
    /// When Chromium cannot be launched.
    pub async fn launch(env: &StackEnv) -> Result<Self> {
        let user_data_dir = std::env::temp_dir().join(random_name("hs-chromium"));
        let config = BrowserConfig::builder()
            .chrome_executable(&env.chromium)
            .user_data_dir(&user_data_dir)
            .no_sandbox()
            .args([
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ])
            .build()
            .map_err(anyhow::Error::msg)
            .context("building the browser config")?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .with_context(|| format!("launching {}", env.chromium.display()))?;
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Ok(Self {
            browser,
            handler,
            user_data_dir,
        })
    }

    /// Closes the browser, waits for its process and removes its profile.
    ///
    /// # Errors
    /// When the browser does not close cleanly.
    pub async fn close(mut self) -> Result<()> {
        self.browser.close().await.context("closing the browser")?;
        self.browser
            .wait()
            .await
            .context("waiting for the browser to exit")?;
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.user_data_dir);
        Ok(())
    }
}
