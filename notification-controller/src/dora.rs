//! DORA metrics (beyond Flux) from the events the controllers already send: deployment
//! frequency, lead time for changes, change failure rate and time to restore, per Kustomization.
//!
//! A *deployment* is a Kustomization becoming Ready with a revision it had not applied before
//! (`ReconciliationSucceeded` with a new `<group>/revision`); its lead time runs from the commit
//! time source-controller announced for that revision (`NewArtifact`, `<group>/commit_time`).
//! A revision is a *failed deployment* when any error event names it; a Kustomization is *down*
//! from its first error event until its next `ReconciliationSucceeded` (time to restore).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use k8s_openapi::jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sluice_runtime::events::{EventSeverity, NotificationEvent};

use crate::observe::EventObserver;

/// Metadata key suffix under which source-controller puts the commit time (RFC 3339).
pub const METADATA_COMMIT_TIME: &str = "commit_time";
/// Kustomizations tracked at once; the least recently seen is forgotten first.
pub const MAX_KUSTOMIZATIONS: usize = 10_000;
/// Revisions whose commit time is remembered; the oldest is forgotten first.
pub const MAX_REVISIONS: usize = 4_096;

const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
const SUCCEEDED: &str = "ReconciliationSucceeded";
const NEW_ARTIFACT: &str = "NewArtifact";

/// The Kustomization a DORA series belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DoraLabels {
    pub namespace: String,
    pub name: String,
}

/// Lead time and restore buckets: 30s up to about 6 days.
fn duration_histogram() -> Histogram {
    Histogram::new([
        30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0, 259_200.0,
        518_400.0,
    ])
}

/// What is known about one Kustomization.
#[derive(Debug, Default)]
struct Tracked {
    /// The revision the last event named, and whether it succeeded / failed already.
    revision: String,
    succeeded: bool,
    failed: bool,
    /// When the current outage began.
    down_since: Option<Timestamp>,
    /// Ordering for eviction: higher is more recent.
    seen: u64,
}

#[derive(Default)]
struct State {
    kustomizations: HashMap<DoraLabels, Tracked>,
    commit_times: HashMap<String, Timestamp>,
    commit_order: VecDeque<String>,
    clock: u64,
}

/// The DORA metrics; register them with [`DoraMetrics::register`] and pass the value to the
/// event server as an [`EventObserver`].
pub struct DoraMetrics {
    deployments: Family<DoraLabels, Counter>,
    attempts: Family<DoraLabels, Counter>,
    failures: Family<DoraLabels, Counter>,
    lead_time: Family<DoraLabels, Histogram, fn() -> Histogram>,
    restore_time: Family<DoraLabels, Histogram, fn() -> Histogram>,
    state: Mutex<State>,
}

impl Default for DoraMetrics {
    fn default() -> Self {
        Self {
            deployments: Family::default(),
            attempts: Family::default(),
            failures: Family::default(),
            lead_time: Family::new_with_constructor(duration_histogram),
            restore_time: Family::new_with_constructor(duration_histogram),
            state: Mutex::new(State::default()),
        }
    }
}

impl DoraMetrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the `sluice_dora_*` metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sluice_dora_deployments",
            "Revisions a Kustomization became Ready with (deployment frequency)",
            self.deployments.clone(),
        );
        registry.register(
            "sluice_dora_deployment_attempts",
            "Revisions a Kustomization tried to apply, successful or not",
            self.attempts.clone(),
        );
        registry.register(
            "sluice_dora_failed_deployments",
            "Revisions for which a Kustomization reported an error (change failure rate numerator)",
            self.failures.clone(),
        );
        registry.register(
            "sluice_dora_lead_time_seconds",
            "Seconds from a commit to its Kustomization being Ready with it",
            self.lead_time.clone(),
        );
        registry.register(
            "sluice_dora_time_to_restore_seconds",
            "Seconds from a Kustomization's first error to its next successful reconcile",
            self.restore_time.clone(),
        );
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_commit(&self, event: &NotificationEvent) {
        let revision = event.metadata.get(&format!("{SOURCE_GROUP}/revision"));
        let time = event
            .metadata
            .get(&format!("{SOURCE_GROUP}/{METADATA_COMMIT_TIME}"))
            .and_then(|text| text.parse::<Timestamp>().ok());
        let (Some(revision), Some(time)) = (revision, time) else {
            return;
        };
        let mut state = self.state();
        if state.commit_times.insert(revision.clone(), time).is_none() {
            state.commit_order.push_back(revision.clone());
        }
        while state.commit_order.len() > MAX_REVISIONS {
            if let Some(oldest) = state.commit_order.pop_front() {
                state.commit_times.remove(&oldest);
            }
        }
    }

    fn record_kustomization(&self, event: &NotificationEvent) {
        let labels = DoraLabels {
            namespace: event.involved_object.namespace.clone().unwrap_or_default(),
            name: event.involved_object.name.clone().unwrap_or_default(),
        };
        let revision = event
            .metadata
            .get(&format!("{KUSTOMIZE_GROUP}/revision"))
            .cloned()
            .unwrap_or_default();
        let at = event.timestamp.0;
        let mut state = self.state();
        state.clock += 1;
        let clock = state.clock;
        let commit_time = state.commit_times.get(&revision).copied();
        let tracked = state.kustomizations.entry(labels.clone()).or_default();
        tracked.seen = clock;
        if !revision.is_empty() && tracked.revision != revision {
            *tracked = Tracked {
                revision: revision.clone(),
                down_since: tracked.down_since,
                seen: clock,
                ..Tracked::default()
            };
            self.attempts.get_or_create(&labels).inc();
        }
        if event.severity == EventSeverity::Error {
            if !tracked.failed && !tracked.revision.is_empty() {
                tracked.failed = true;
                self.failures.get_or_create(&labels).inc();
            }
            tracked.down_since.get_or_insert(at);
        } else if event.reason == SUCCEEDED {
            if let Some(since) = tracked.down_since.take() {
                self.restore_time
                    .get_or_create(&labels)
                    .observe(seconds_between(since, at));
            }
            if !tracked.succeeded && !tracked.revision.is_empty() {
                tracked.succeeded = true;
                self.deployments.get_or_create(&labels).inc();
                if let Some(committed) = commit_time {
                    self.lead_time
                        .get_or_create(&labels)
                        .observe(seconds_between(committed, at));
                }
            }
        }
        self.evict(&mut state);
    }

    /// Forgets the least recently seen Kustomization (and its series) beyond the bound.
    fn evict(&self, state: &mut State) {
        if state.kustomizations.len() <= MAX_KUSTOMIZATIONS {
            return;
        }
        let oldest = state
            .kustomizations
            .iter()
            .min_by_key(|(_, tracked)| tracked.seen)
            .map(|(labels, _)| labels.clone());
        if let Some(labels) = oldest {
            state.kustomizations.remove(&labels);
            self.deployments.remove(&labels);
            self.attempts.remove(&labels);
            self.failures.remove(&labels);
            self.lead_time.remove(&labels);
            self.restore_time.remove(&labels);
        }
    }
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    let seconds = to.as_millisecond().saturating_sub(from.as_millisecond()) as f64 / 1000.0;
    seconds.max(0.0)
}

fn group_of(api_version: Option<&str>) -> &str {
    api_version
        .and_then(|version| version.split_once('/'))
        .map_or("", |(group, _)| group)
}

impl EventObserver for DoraMetrics {
    fn observe(&self, event: &NotificationEvent) {
        let object = &event.involved_object;
        let group = group_of(object.api_version.as_deref());
        match object.kind.as_deref() {
            Some("Kustomization") if group == KUSTOMIZE_GROUP => self.record_kustomization(event),
            Some(_) if group == SOURCE_GROUP && event.reason == NEW_ARTIFACT => {
                self.record_commit(event)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
