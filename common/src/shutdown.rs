//! Cooperative shutdown: SIGTERM or SIGINT flips a watch channel that every loop selects on.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A handle that resolves once shutdown was requested. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The side that requests shutdown (signals, or a test).
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A connected trigger and handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    /// Requests shutdown; every [`Shutdown::requested`] resolves.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Triggers shutdown on the first SIGTERM or SIGINT.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn on_signals(self) -> std::io::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(signal = "SIGTERM", "Shutting down."),
                _ = int.recv() => tracing::info!(signal = "SIGINT", "Shutting down."),
            }
            self.trigger();
        });
        Ok(())
    }
}

impl Shutdown {
    /// Whether shutdown was requested already.
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown is requested (at once if it was).
    pub async fn requested(&mut self) {
        // An error means every trigger is gone, which can only happen at exit.
        let _ = self.receiver.wait_for(|requested| *requested).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_wakes_every_clone() {
        let (trigger, shutdown) = channel();
        let mut a = shutdown.clone();
        let mut b = shutdown;
        assert!(!a.is_requested());
        trigger.trigger();
        a.requested().await;
        b.requested().await;
        assert!(b.is_requested());
    }
}
