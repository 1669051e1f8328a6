//! Per-Provider delivery queues: each Provider has one bounded queue drained by its own task,
//! so a slow or dead Provider delays only its own events; a full queue drops new events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};
use sluice_api::notification::{Alert, Provider, ProviderType};
use sluice_runtime::events::{EventSink, NotificationEvent, ObjectEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::delivery::{self, ClientCache, DeliveryError, RetryPolicy};

/// Reason of the Warning event on an Alert whose delivery failed (as Flux).
pub const DISPATCH_FAILED: &str = "NotificationDispatchFailed";

/// Shortest time between two Warnings about dropped events on one Alert.
pub const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(30);
/// Alerts whose drop Warnings are tracked at most.
const DROP_WARNINGS_TRACKED: usize = 10_000;

/// Bounds and retry policy of the queues.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    /// Events waiting per Provider.
    pub queue_capacity: usize,
    /// Providers with a live queue.
    pub max_queues: usize,
    /// How long an idle queue's task lives.
    pub idle: Duration,
    pub retry: RetryPolicy,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 100,
            max_queues: 1000,
            idle: Duration::from_secs(300),
            retry: RetryPolicy::default(),
        }
    }
}

/// Per Alert `(namespace, name)`: when a dropped event was last reported and how many were
/// dropped since, so a full queue never costs an apiserver write per event.
#[derive(Default)]
struct DropWarnings(Mutex<HashMap<(String, String), (Instant, u64)>>);

impl DropWarnings {
    /// Counts a drop at `now`; returns the drops to report when the Alert's last Warning is
    /// older than [`DROP_WARNING_INTERVAL`].
    fn due(&self, alert: (String, String), now: Instant) -> Option<u64> {
        let mut warnings = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match warnings.get_mut(&alert) {
            Some((at, suppressed)) if now.duration_since(*at) < DROP_WARNING_INTERVAL => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let dropped = *suppressed + 1;
                (*at, *suppressed) = (now, 0);
                Some(dropped)
            }
            None => {
                if warnings.len() >= DROP_WARNINGS_TRACKED {
                    warnings.retain(|_, (at, _)| now.duration_since(*at) < DROP_WARNING_INTERVAL);
                }
                if warnings.len() < DROP_WARNINGS_TRACKED {
                    warnings.insert(alert, (now, 0));
                }
                Some(1)
            }
        }
    }
}

/// One event for one Alert's Provider, metadata already combined.
#[derive(Debug, Clone)]
pub struct Job {
    pub alert: Arc<Alert>,
    pub event: NotificationEvent,
}

/// Queue of one Provider; `id` tells a replaced queue from the current one.
struct Queue {
    id: u64,
    sender: mpsc::Sender<Job>,
}

/// Hands jobs to per-Provider queues.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    providers: Store<Provider>,
    events: EventSink,
    settings: DispatchSettings,
    shutdown: CancellationToken,
    queues: Mutex<(u64, HashMap<ObjectRef<Provider>, Queue>)>,
    clients: ClientCache,
    drop_warnings: DropWarnings,
}

impl Dispatcher {
    pub fn new(
        client: Client,
        providers: Store<Provider>,
        events: EventSink,
        settings: DispatchSettings,
        shutdown: CancellationToken,
    ) -> Self {
        let inner = Inner {
            client,
            providers,
            events,
            settings,
            shutdown,
            queues: Mutex::new((0, HashMap::new())),
            clients: ClientCache::default(),
            drop_warnings: DropWarnings::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Queues `job` for the Alert's Provider; returns false when it was dropped (queue full
    /// or too many Providers), with a Warning event on the Alert at most every 30 s.
    pub async fn enqueue(&self, job: Job) -> bool {
        let namespace = job.alert.metadata.namespace.clone().unwrap_or_default();
        let key = ObjectRef::new(&job.alert.spec.provider_ref.name).within(&namespace);
        let refused = match self.sender(&key) {
            Some(sender) => match sender.try_send(job) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(job)) => (job, "its queue is full"),
                Err(mpsc::error::TrySendError::Closed(job)) => (job, "its queue closed"),
            },
            None => (job, "too many Providers have queued events"),
        };
        let (job, why) = refused;
        let alert = job.alert.metadata.name.clone().unwrap_or_default();
        let Some(dropped) = self
            .inner
            .drop_warnings
            .due((namespace.clone(), alert), Instant::now())
        else {
            tracing::debug!(alert = ?job.alert.metadata.name, provider = %key.name, namespace, why, "dropping event");
            return false;
        };
        let message = format!(
            "dropped {dropped} event(s) for Provider {}: {why}; the provider is slow or unreachable",
            key.name
        );
        tracing::warn!(alert = ?job.alert.metadata.name, provider = %key.name, namespace, why, dropped, "dropping events");
        self.inner
            .events
            .publish(
                job.alert.as_ref(),
                ObjectEvent::error(DISPATCH_FAILED, message),
            )
            .await;
        false
    }

    fn sender(&self, key: &ObjectRef<Provider>) -> Option<mpsc::Sender<Job>> {
        let mut guard = self
            .inner
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (next_id, queues) = &mut *guard;
        if let Some(queue) = queues.get(key).filter(|queue| !queue.sender.is_closed()) {
            return Some(queue.sender.clone());
        }
        queues.retain(|_, queue| !queue.sender.is_closed());
        if queues.len() >= self.inner.settings.max_queues {
            return None;
        }
        let (sender, receiver) = mpsc::channel(self.inner.settings.queue_capacity.max(1));
        *next_id += 1;
        let id = *next_id;
        queues.insert(
            key.clone(),
            Queue {
                id,
                sender: sender.clone(),
            },
        );
        tokio::spawn(drain(self.inner.clone(), key.clone(), id, receiver));
        Some(sender)
    }
}

/// Delivers a Provider's jobs one by one until idle or shutdown, then removes its queue.
async fn drain(
    inner: Arc<Inner>,
    key: ObjectRef<Provider>,
    id: u64,
    mut receiver: mpsc::Receiver<Job>,
) {
    loop {
        let job = tokio::select! {
            () = inner.shutdown.cancelled() => break,
            job = tokio::time::timeout(inner.settings.idle, receiver.recv()) => match job {
                Ok(Some(job)) => job,
                Ok(None) | Err(_) => break,
            },
        };
        tokio::select! {
            () = inner.shutdown.cancelled() => break,
            () = deliver(&inner, &key, job) => {}
        }
    }
    let mut guard = inner.queues.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.1.get(&key).is_some_and(|queue| queue.id == id) {
        guard.1.remove(&key);
    }
}

async fn deliver(inner: &Inner, key: &ObjectRef<Provider>, job: Job) {
    let Some(provider) = inner.providers.get(key) else {
        let message = format!(
            "Provider {} not found in namespace {}",
            key.name,
            key.namespace.as_deref().unwrap_or_default()
        );
        inner
            .events
            .publish(
                job.alert.as_ref(),
                ObjectEvent::error(DISPATCH_FAILED, message),
            )
            .await;
        return;
    };
    if provider.spec.suspend || !reports(&provider, &job.event) {
        return;
    }
    let mut secrets = Vec::new();
    let result = async {
        let prepared = delivery::prepare(&inner.client, &inner.clients, &provider).await?;
        secrets.clone_from(&prepared.secrets);
        let Some(request) = delivery::build(&prepared, &job.event)? else {
            return Ok::<_, DeliveryError>(());
        };
        delivery::send(&prepared, &request, inner.settings.retry).await
    }
    .await;
    if let Err(error) = result {
        let message = sluice_secrets::redact(
            &format!("sending the event to Provider {} failed: {error}", key.name),
            &secrets,
        );
        tracing::warn!(alert = ?job.alert.metadata.name, provider = %key.name, namespace = ?key.namespace, error = %message, "notification dispatch failed");
        inner
            .events
            .publish(
                job.alert.as_ref(),
                ObjectEvent::error(DISPATCH_FAILED, message),
            )
            .await;
    }
}

/// Flux's commit-status gating: chat and incident types skip `commit_status: update` events.
fn reports(provider: &Provider, event: &NotificationEvent) -> bool {
    let Some(kind) = provider.provider_type() else {
        return true;
    };
    let generic = matches!(kind, ProviderType::Generic | ProviderType::GenericHmac);
    generic
        || kind.is_commit_status()
        || event.metadata.get("commit_status").map(String::as_str) != Some("update")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_events_are_reported_once_per_interval_with_their_count() {
        let warnings = DropWarnings::default();
        let alert = || ("ns".to_owned(), "a".to_owned());
        let start = Instant::now();
        assert_eq!(warnings.due(alert(), start), Some(1));
        for n in 1..=5 {
            assert_eq!(warnings.due(alert(), start + Duration::from_secs(n)), None);
        }
        assert_eq!(
            warnings.due(("ns".to_owned(), "b".to_owned()), start),
            Some(1)
        );
        let later = start + DROP_WARNING_INTERVAL;
        assert_eq!(warnings.due(alert(), later), Some(6));
        assert_eq!(warnings.due(alert(), later), None);
    }
}
