//! Liveness (`/healthz`) and readiness (`/readyz`) endpoints.
//!
//! Readiness is the conjunction of named gates, one per controller: a controller opens its gate
//! once its cache has synced (or while it stands by as a non-leader) and closes it while resyncing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

/// Shared readiness state; clones share the same gates.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    gates: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a closed gate; the process is unready until every gate is open.
    pub fn gate(&self, name: impl Into<String>) -> ReadinessGate {
        let name = name.into();
        self.lock().insert(name.clone(), false);
        ReadinessGate {
            readiness: self.clone(),
            name,
        }
    }

    /// True when at least one gate exists and all gates are open.
    pub fn is_ready(&self) -> bool {
        let gates = self.lock();
        !gates.is_empty() && gates.values().all(|open| *open)
    }

    /// Names of the gates still closed.
    pub fn pending(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, open)| !**open)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One component's contribution to readiness.
#[derive(Debug, Clone)]
pub struct ReadinessGate {
    readiness: Readiness,
    name: String,
}

impl ReadinessGate {
    /// Opens or closes this gate.
    pub fn set(&self, open: bool) {
        self.readiness.lock().insert(self.name.clone(), open);
    }
}

/// An axum router serving `GET /healthz` (always 200) and `GET /readyz` (200 once ready, else 503).
pub fn probes_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    if readiness.is_ready() {
                        (StatusCode::OK, "ok".to_owned())
                    } else {
                        let pending = readiness.pending();
                        let detail = if pending.is_empty() {
                            "no controller started yet".to_owned()
                        } else {
                            format!("waiting for: {}", pending.join(", "))
                        };
                        (StatusCode::SERVICE_UNAVAILABLE, detail)
                    }
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_all_gates_are_open() {
        let readiness = Readiness::new();
        assert!(!readiness.is_ready());
        let first = readiness.gate("gitrepository");
        let second = readiness.gate("ocirepository");
        assert_eq!(readiness.pending(), ["gitrepository", "ocirepository"]);
        first.set(true);
        assert!(!readiness.is_ready());
        second.set(true);
        assert!(readiness.is_ready());
        second.set(false);
        assert!(!readiness.is_ready());
    }
}
