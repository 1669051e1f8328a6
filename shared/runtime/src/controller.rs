//! Running a reconciler on kube-runtime's `Controller` with Flux's triggering, retry and requeue rules.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Debug;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::runtime::controller::{
    Action, Config as ControllerConfig, Controller, Error as ControllerError,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};
use rand::{Rng, RngExt};
use serde::de::DeserializeOwned;
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use tokio_util::sync::CancellationToken;

use crate::context::RuntimeContext;
use crate::metrics::{ObjectLabels, ReconcileResult};
use crate::triggers::NoSharedBackoff;

/// What to do after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Reconcile again only when the object changes.
    OnChange,
    /// Reconcile again after this long (or earlier if the object changes).
    After(Duration),
}

impl Requeue {
    fn into_action(self) -> Action {
        match self {
            Self::OnChange => Action::await_change(),
            Self::After(delay) => Action::requeue(delay),
        }
    }
}

/// How a failed reconcile is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Per-object exponential backoff between --min-retry-delay and --max-retry-delay.
    Backoff,
    /// Retry after a fixed delay (e.g. --requeue-dependency while waiting on something).
    After(Duration),
    /// Do not retry until the object changes (the object is stalled).
    Never,
}

/// An error a reconciler returns; override [`ReconcileError::retry`] for stalled or waiting errors.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    fn retry(&self) -> Retry {
        Retry::Backoff
    }
}

/// Watch-event predicate: generation (resourceVersion for kinds without one) or the
/// `reconcile.fluxcd.io/requestedAt` annotation changed.
pub fn reconcile_trigger<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let mut hasher = DefaultHasher::new();
    match meta.generation {
        Some(generation) => generation.hash(&mut hasher),
        None => meta.resource_version.hash(&mut hasher),
    }
    meta.annotations
        .as_ref()
        .and_then(|annotations| annotations.get(RECONCILE_REQUESTED_AT_ANNOTATION))
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// `interval` scaled by a random factor in `[1 - p, 1 + p)` for `percentage` p; 0 or ≥100 disables jitter.
pub fn jittered(interval: Duration, percentage: u8, rng: &mut impl Rng) -> Duration {
    if percentage == 0 || percentage >= 100 {
        return interval;
    }
    let spread = f64::from(percentage) / 100.0;
    let factor = 1.0 + spread * rng.random_range(-1.0..1.0);
    interval.mul_f64(factor)
}

/// The delay before retry number `failures` (1-based): `min * 2^(failures-1)`, capped at `max`.
pub fn retry_delay(min: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1);
    let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

/// Consecutive failures per object, reset by a successful reconcile.
#[derive(Debug, Default)]
struct FailureCounts(Mutex<HashMap<String, u32>>);

impl FailureCounts {
    fn record_failure(&self, key: &str) -> u32 {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.to_owned()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    fn reset(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

type Customize<K> = Arc<dyn Fn(Controller<K>) -> Controller<K> + Send + Sync>;

/// Runs one reconciler for kind `K` with the process's flags, metrics, readiness and leadership.
///
/// Flux-style kinds pass [`lifecycle::reconcile`](crate::lifecycle::reconcile) and their
/// [`Reconciler`](crate::lifecycle::Reconciler); any other kind passes its own function:
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube::ResourceExt;
/// use sluice_runtime::{ControllerRunner, ReconcileError, Requeue, RuntimeContext};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("reconciling a ConfigMap failed")]
/// struct Failed;
///
/// impl ReconcileError for Failed {}
///
/// async fn reconcile(config_map: Arc<ConfigMap>, _: Arc<()>) -> Result<Requeue, Failed> {
///     tracing::info!(name = config_map.name_any(), "seen");
///     Ok(Requeue::After(Duration::from_secs(300)))
/// }
///
/// async fn run(runtime: &RuntimeContext) {
///     ControllerRunner::new("configmaps", runtime.watched_api::<ConfigMap>(), runtime)
///         .run(reconcile, Arc::new(()))
///         .await;
/// }
/// ```
pub struct ControllerRunner<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    name: String,
    api: Api<K>,
    runtime: RuntimeContext,
    customize: Customize<K>,
}

impl<K> ControllerRunner<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// A runner named `name` (the `controller` metrics label) watching `api`.
    pub fn new(name: impl Into<String>, api: Api<K>, runtime: &RuntimeContext) -> Self {
        Self {
            name: name.into(),
            api,
            runtime: runtime.clone(),
            customize: Arc::new(|controller| controller),
        }
    }

    /// Adjusts each term's `Controller` before it runs, e.g. to add triggers. Each added watch
    /// must back off on its own: [`crate::backing_off`].
    pub fn customize(
        mut self,
        customize: impl Fn(Controller<K>) -> Controller<K> + Send + Sync + 'static,
    ) -> Self {
        self.customize = Arc::new(customize);
        self
    }

    /// Reconciles until shutdown; with leader election, only during leadership terms.
    pub async fn run<Ctx, F, Fut, E>(self, reconcile: F, context: Arc<Ctx>)
    where
        Ctx: Send + Sync + 'static,
        F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Requeue, E>> + Send + 'static,
        E: ReconcileError,
    {
        self.runtime.metrics.register_controller(&self.name);
        let gate = self.runtime.readiness.gate(self.name.clone());
        let mut leadership = self.runtime.leadership.clone();
        let reconcile = Arc::new(reconcile);
        let failures = Arc::new(FailureCounts::default());
        loop {
            if !leadership.is_leader() {
                gate.set(true);
                tracing::info!(controller = %self.name, "standing by until this replica leads");
            }
            let Some(term) = leadership.acquired().await else {
                break;
            };
            gate.set(false);
            self.run_term(
                &term,
                &gate,
                reconcile.clone(),
                failures.clone(),
                context.clone(),
            )
            .await;
            if self.runtime.shutdown.is_cancelled() {
                break;
            }
        }
        tracing::info!(controller = %self.name, "controller stopped");
    }

    async fn run_term<Ctx, F, Fut, E>(
        &self,
        term: &CancellationToken,
        gate: &crate::probes::ReadinessGate,
        reconcile: Arc<F>,
        failures: Arc<FailureCounts>,
        context: Arc<Ctx>,
    ) where
        Ctx: Send + Sync + 'static,
        F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Requeue, E>> + Send + 'static,
        E: ReconcileError,
    {
        let flags = &self.runtime.flags;
        let mut watch_config = watcher::Config::default();
        if let Some(selector) = flags.label_selector() {
            watch_config = watch_config.labels(selector);
        }
        let (store, writer) = reflector::store();
        // Readiness follows the watch stream's InitDone rather than Store::wait_until_ready,
        // whose single waker is already taken by the Controller's own wait.
        let sync_gate = gate.clone();
        let controller_name = self.name.clone();
        let objects = watcher(self.api.clone(), watch_config)
            .default_backoff()
            .reflect(writer)
            .inspect_ok(move |event| {
                if matches!(event, watcher::Event::InitDone) {
                    tracing::info!(controller = %controller_name, "cache synced");
                    sync_gate.set(true);
                }
            })
            .applied_objects()
            .predicate_filter(reconcile_trigger, Default::default());
        let controller = Controller::for_stream(objects, store)
            .trigger_backoff(NoSharedBackoff)
            .with_config(ControllerConfig::default().concurrency(flags.concurrent))
            .graceful_shutdown_on(term.clone().cancelled_owned());
        let controller = (self.customize)(controller);

        let name = self.name.clone();
        let metrics = self.runtime.metrics.clone();
        let reconcile_failures = failures.clone();
        let wrapped = move |object: Arc<K>, context: Arc<Ctx>| {
            let labels = ObjectLabels::of(object.as_ref());
            let key = object_key(object.as_ref());
            let started = Instant::now();
            let pending = reconcile(object, context);
            let metrics = metrics.clone();
            let name = name.clone();
            let failures = reconcile_failures.clone();
            async move {
                let outcome = pending.await;
                metrics.record_duration(&labels, started.elapsed());
                let result = match &outcome {
                    Ok(Requeue::OnChange) => ReconcileResult::Success,
                    Ok(Requeue::After(_)) => ReconcileResult::RequeueAfter,
                    Err(_) => ReconcileResult::Error,
                };
                metrics.record_reconcile(&name, result);
                if outcome.is_ok() {
                    failures.reset(&key);
                }
                outcome.map(Requeue::into_action)
            }
        };

        let (min_delay, max_delay) = (flags.min_retry_delay, flags.max_retry_delay);
        let name = self.name.clone();
        let error_policy = move |object: Arc<K>, error: &E, _: Arc<Ctx>| {
            let retry = error.retry();
            let delay = match retry {
                Retry::Never => None,
                Retry::After(delay) => Some(delay),
                Retry::Backoff => {
                    let count = failures.record_failure(&object_key(object.as_ref()));
                    Some(retry_delay(min_delay, max_delay, count))
                }
            };
            tracing::error!(
                controller = %name,
                namespace = object.namespace().unwrap_or_default(),
                name = object.name_any(),
                %error,
                retry_in = ?delay,
                "reconcile failed"
            );
            delay.map_or_else(Action::await_change, Action::requeue)
        };

        let name = self.name.clone();
        controller
            .run(wrapped, error_policy, context)
            .for_each(|result| {
                log_controller_result(&name, result);
                futures::future::ready(())
            })
            .await;
    }
}

fn log_controller_result<K, E>(
    controller: &str,
    result: Result<(reflector::ObjectRef<K>, Action), ControllerError<E, watcher::Error>>,
) where
    K: Resource,
    E: std::error::Error,
{
    match result {
        Ok((object, action)) => tracing::debug!(controller, %object, ?action, "reconciled"),
        Err(ControllerError::ReconcilerFailed(..)) => {}
        Err(ControllerError::ObjectNotFound(object)) => {
            tracing::debug!(controller, %object, "object gone before its reconcile ran");
        }
        Err(error) => {
            tracing::warn!(controller, %error, "watch or queue error; retrying with backoff")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut rng = StdRng::seed_from_u64(7);
        let interval = Duration::from_secs(600);
        let samples: Vec<_> = (0..2000).map(|_| jittered(interval, 5, &mut rng)).collect();
        let low = Duration::from_secs(570);
        let high = Duration::from_secs(630);
        assert!(samples.iter().all(|d| *d >= low && *d < high));
        assert!(samples.iter().any(|d| *d < Duration::from_secs(585)));
        assert!(samples.iter().any(|d| *d > Duration::from_secs(615)));
        assert_eq!(jittered(interval, 0, &mut rng), interval);
        assert_eq!(jittered(interval, 100, &mut rng), interval);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let min = Duration::from_millis(750);
        let max = Duration::from_secs(900);
        assert_eq!(retry_delay(min, max, 0), min);
        assert_eq!(retry_delay(min, max, 1), min);
        assert_eq!(retry_delay(min, max, 2), Duration::from_millis(1500));
        assert_eq!(retry_delay(min, max, 3), Duration::from_secs(3));
        assert_eq!(retry_delay(min, max, 11), Duration::from_millis(768_000));
        assert_eq!(retry_delay(min, max, 12), max);
        assert_eq!(retry_delay(min, max, 40), max);
        assert_eq!(retry_delay(min, max, u32::MAX), max);
    }

    #[test]
    fn failure_counts_reset_on_success() {
        let counts = FailureCounts::default();
        assert_eq!(counts.record_failure("a/x"), 1);
        assert_eq!(counts.record_failure("a/x"), 2);
        assert_eq!(counts.record_failure("a/y"), 1);
        counts.reset("a/x");
        assert_eq!(counts.record_failure("a/x"), 1);
    }

    fn object(generation: Option<i64>, version: &str, requested_at: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("x".into()),
                generation,
                resource_version: Some(version.into()),
                annotations: requested_at.map(|token| {
                    [(
                        RECONCILE_REQUESTED_AT_ANNOTATION.to_owned(),
                        token.to_owned(),
                    )]
                    .into()
                }),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn trigger_ignores_status_only_updates() {
        let base = reconcile_trigger(&object(Some(1), "10", None));
        assert_eq!(base, reconcile_trigger(&object(Some(1), "11", None)));
        assert_ne!(base, reconcile_trigger(&object(Some(2), "12", None)));
        assert_ne!(base, reconcile_trigger(&object(Some(1), "13", Some("now"))));
        assert_ne!(
            reconcile_trigger(&object(Some(1), "13", Some("now"))),
            reconcile_trigger(&object(Some(1), "14", Some("later")))
        );
    }

    #[test]
    fn trigger_falls_back_to_resource_version_without_generation() {
        assert_ne!(
            reconcile_trigger(&object(None, "1", None)),
            reconcile_trigger(&object(None, "2", None))
        );
    }
}
