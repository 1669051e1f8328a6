//! Graceful shutdown: SIGTERM/SIGINT cancel a root token that every component derives from.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Installing a signal handler failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "installing the {signal} handler failed: {source}; the process cannot shut down gracefully"
)]
pub struct ShutdownError {
    signal: &'static str,
    source: std::io::Error,
}

/// Completes on the first SIGTERM or SIGINT.
pub async fn termination_signal() -> Result<(), ShutdownError> {
    let mut handlers = SignalHandlers::install()?;
    let received = handlers.next().await;
    tracing::info!(signal = received, "shutdown requested");
    Ok(())
}

struct SignalHandlers {
    terminate: Signal,
    interrupt: Signal,
}

impl SignalHandlers {
    fn install() -> Result<Self, ShutdownError> {
        let install = |kind, name| {
            signal(kind).map_err(|source| ShutdownError {
                signal: name,
                source,
            })
        };
        Ok(Self {
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// The root of the process's cancellation tree.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    root: CancellationToken,
}

impl Shutdown {
    /// A tree that is cancelled only by [`Shutdown::trigger`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree cancelled on SIGTERM or SIGINT; handlers are installed before this returns.
    pub fn on_signals() -> Result<(Self, JoinHandle<()>), ShutdownError> {
        let shutdown = Self::new();
        let mut handlers = SignalHandlers::install()?;
        let root = shutdown.root.clone();
        let watcher = tokio::spawn(async move {
            let received = tokio::select! {
                received = handlers.next() => received,
                () = root.cancelled() => return,
            };
            tracing::info!(signal = received, "shutdown requested");
            root.cancel();
        });
        Ok((shutdown, watcher))
    }

    /// The root token: cancelled when the process shuts down.
    pub fn token(&self) -> CancellationToken {
        self.root.clone()
    }

    /// A child token: cancelled with the root, or on its own without affecting siblings.
    pub fn child(&self) -> CancellationToken {
        self.root.child_token()
    }

    /// Starts shutting down.
    pub fn trigger(&self) {
        self.root.cancel();
    }

    /// Completes once shutdown has started.
    pub async fn cancelled(&self) {
        self.root.cancelled().await;
    }

    pub fn is_cancelled(&self) -> bool {
        self.root.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn children_follow_the_root_but_not_each_other() {
        let shutdown = Shutdown::new();
        let first = shutdown.child();
        let second = shutdown.child();
        first.cancel();
        assert!(!second.is_cancelled());
        assert!(!shutdown.is_cancelled());
        shutdown.trigger();
        second.cancelled().await;
        shutdown.cancelled().await;
    }

    #[tokio::test]
    async fn signal_watcher_stops_when_triggered_programmatically() {
        let (shutdown, watcher) = Shutdown::on_signals().expect("handlers install");
        shutdown.trigger();
        watcher.await.expect("watcher exits cleanly");
    }
}
