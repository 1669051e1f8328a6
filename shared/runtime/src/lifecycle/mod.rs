//! The lifecycle every Flux object shares, the counterpart of Flux's `runtime/patch` and
//! `summarize` helpers: finalizer, suspend, the progressing status write, `observedGeneration`
//! and `lastHandledReconcileAt`, the `Ready` summary, condition metrics, events and requeue.
//!
//! A kind implements [`Reconciler`] (its steps, and optionally its cleanup on deletion) and hands
//! [`reconcile`] to a [`ControllerRunner`](crate::ControllerRunner); the lifecycle does the rest.

mod finalizer;
mod outcome;
mod written;

use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use k8s_openapi::NamespaceResourceScope;
use kube::core::object::HasStatus;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_api::FluxObject;
use sluice_api::meta::FINALIZER;
use sluice_api::meta::condition_type::READY;

pub use finalizer::FinalizerError;
pub use outcome::{Conclusion, Failure, Next, Outcome, ReadyRule, conclude, mark_progressing};
pub use written::WrittenVersions;

use crate::conditions::{self, ConditionStatus};
use crate::context::RuntimeContext;
use crate::controller::{ReconcileError, Requeue, Retry};
use crate::events::ObjectEvent;
use crate::metrics::ObjectLabels;
use crate::status::StatusError;

/// Requeue interval when `spec.interval` cannot be parsed (the CRD validates it, so rarely used).
const FALLBACK_INTERVAL: Duration = Duration::from_secs(60);

/// The bounds a kind must meet to run on the lifecycle (every Flux kind derived with kube-derive does).
pub trait LifecycleObject:
    FluxObject
    + HasStatus<Status: Serialize + Send + Sync>
    + Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> LifecycleObject for K where
    K: FluxObject
        + HasStatus<Status: Serialize + Send + Sync>
        + Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// The fixed choices of a kind.
pub struct Policy<K> {
    /// Field manager of status and finalizer writes (Flux: the controller name, or `gotk-<controller>`).
    pub status_manager: String,
    /// How `Ready` is computed.
    pub ready: ReadyRule<K>,
    /// Conditions exported as `gotk_reconcile_condition` (always including `Ready`).
    pub metric_conditions: &'static [&'static str],
    /// Write `Reconciling` at the start when the generation or a reconcile request is new.
    pub announce_new_generation: bool,
}

/// A kind's reconcile steps; [`reconcile`] wraps them in the shared lifecycle.
///
/// `Greeting` is a kind of your own with [`FluxObject`] implemented (see
/// `sluice_api::impl_flux_object!` and the complete `greeting` example of this crate):
///
/// ```
/// # use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
/// # use kube::CustomResource;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// # use sluice_api::meta::condition_type::{RECONCILING, STALLED};
/// # #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
/// # #[kube(group = "example.sluice.dev", version = "v1alpha1", kind = "Greeting", namespaced)]
/// # #[kube(status = "GreetingStatus")]
/// # pub struct GreetingSpec { interval: String, #[serde(default)] suspend: bool, message: String }
/// # #[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
/// # #[serde(rename_all = "camelCase")]
/// # pub struct GreetingStatus {
/// #     conditions: Vec<Condition>,
/// #     observed_generation: Option<i64>,
/// #     last_handled_reconcile_at: Option<String>,
/// # }
/// # sluice_api::impl_flux_object!(Greeting, &[STALLED, RECONCILING]);
/// use sluice_api::meta::reason;
/// use sluice_runtime::lifecycle::{Lifecycle, Outcome, Policy, ReadyRule, Reconciler};
/// use sluice_runtime::RuntimeContext;
///
/// struct GreetingReconciler {
///     runtime: RuntimeContext,
///     policy: Policy<Greeting>,
/// }
///
/// impl GreetingReconciler {
///     fn new(runtime: RuntimeContext) -> Self {
///         let policy = Policy {
///             status_manager: runtime.controller_name.clone(),
///             ready: ReadyRule::Outcome {
///                 reason: reason::SUCCEEDED,
///                 message: greeted,
///             },
///             metric_conditions: &[],
///             announce_new_generation: true,
///         };
///         Self { runtime, policy }
///     }
/// }
///
/// fn greeted(greeting: &Greeting) -> String {
///     format!("greeted with {:?}", greeting.spec.message)
/// }
///
/// impl Reconciler<Greeting> for GreetingReconciler {
///     fn runtime(&self) -> &RuntimeContext {
///         &self.runtime
///     }
///
///     fn policy(&self) -> &Policy<Greeting> {
///         &self.policy
///     }
///
///     async fn reconcile(&self, greeting: &mut Greeting, _: &Lifecycle<'_, Greeting>) -> Outcome {
///         if greeting.spec.message.trim().is_empty() {
///             return Outcome::stalled("EmptyMessage", "spec.message is empty; set a message");
///         }
///         // The real work goes here; it may set conditions of the kind's own on `greeting`.
///         Outcome::Success
///     }
/// }
/// ```
pub trait Reconciler<K: LifecycleObject>: Send + Sync + 'static {
    /// The runtime: client, flags, events and metrics.
    fn runtime(&self) -> &RuntimeContext;

    /// The kind's fixed choices.
    fn policy(&self) -> &Policy<K>;

    /// Runs the kind's steps on a live, unsuspended object; they may update its status freely.
    fn reconcile(
        &self,
        object: &mut K,
        lifecycle: &Lifecycle<'_, K>,
    ) -> impl Future<Output = Outcome> + Send;

    /// Cleans up before the finalizer is released; a failure keeps the finalizer and retries.
    fn cleanup(&self, _object: &K) -> impl Future<Output = Result<(), Failure>> + Send {
        async { Ok(()) }
    }
}

/// The lifecycle could not record a result, or the outcome asks for a retry.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Finalizer(#[from] FinalizerError),
    #[error("{message}")]
    Failed {
        message: String,
        retry_after: Option<Duration>,
    },
}

impl ReconcileError for LifecycleError {
    fn retry(&self) -> Retry {
        match self {
            Self::Failed {
                retry_after: Some(delay),
                ..
            } => Retry::After(*delay),
            _ => Retry::Backoff,
        }
    }
}

/// What the steps may ask of the lifecycle while they run.
pub struct Lifecycle<'a, K> {
    runtime: &'a RuntimeContext,
    policy: &'a Policy<K>,
    api: Api<K>,
    after_status: AfterStatus,
    previous_ready: Option<Condition>,
}

/// Events held back until the concluding status write, in the order they were queued.
#[derive(Debug, Default)]
struct AfterStatus(Mutex<Vec<ObjectEvent>>);

impl AfterStatus {
    fn push(&self, event: ObjectEvent) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    fn take(&self) -> Vec<ObjectEvent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<K: LifecycleObject> Lifecycle<'_, K> {
    /// The runtime the reconcile runs in.
    pub fn runtime(&self) -> &RuntimeContext {
        self.runtime
    }

    /// An `Api` in the object's namespace.
    pub fn api(&self) -> &Api<K> {
        &self.api
    }

    /// The Ready condition the object came in with, before this reconcile marked it progressing.
    pub fn previous_ready(&self) -> Option<&Condition> {
        self.previous_ready.as_ref()
    }

    /// Marks the object `Reconciling` with `message` and writes its status now.
    pub async fn progress(&self, object: &mut K, message: &str) -> Result<(), StatusError> {
        let generation = object.meta().generation;
        mark_progressing(
            object.conditions_mut(),
            &self.policy.ready,
            message,
            generation,
        );
        self.write_status(object).await
    }

    /// Runs one named step of the reconcile, recording its duration in
    /// `sluice_reconcile_step_duration_seconds` and a debug log line.
    pub async fn step<T>(&self, step: &'static str, work: impl Future<Output = T>) -> T {
        timed::<K, T>(self.runtime, step, work).await
    }

    /// Publishes `event` after the status write that concludes this reconcile (and after its
    /// failure event), as Flux emits a Kustomization's success notice after patching it.
    pub fn publish_after_status(&self, event: ObjectEvent) {
        self.after_status.push(event);
    }

    /// Writes the object's status (server-side apply, owned by the kind's status manager).
    pub async fn write_status(&self, object: &K) -> Result<(), StatusError> {
        if let Some(status) = object.status() {
            let stored = crate::status::apply_status(
                &self.api,
                &object.name_any(),
                &self.policy.status_manager,
                status,
            )
            .await?;
            self.runtime.written.record(&stored);
        }
        Ok(())
    }
}

/// Reconciles `object` with `reconciler`'s steps inside the shared lifecycle; pass it to
/// [`ControllerRunner::run`](crate::ControllerRunner::run).
///
/// ```
/// use std::sync::Arc;
/// use sluice_runtime::lifecycle::{self, LifecycleObject, Reconciler};
/// use sluice_runtime::{ControllerRunner, RuntimeContext};
///
/// /// Reconciles kind `K` in the watched namespaces until shutdown.
/// async fn run<K: LifecycleObject>(runtime: &RuntimeContext, reconciler: impl Reconciler<K>) {
///     ControllerRunner::new(K::kind(&()), runtime.watched_api::<K>(), runtime)
///         .run(lifecycle::reconcile, Arc::new(reconciler))
///         .await;
/// }
/// ```
pub async fn reconcile<K, R>(object: Arc<K>, reconciler: Arc<R>) -> Result<Requeue, LifecycleError>
where
    K: LifecycleObject,
    R: Reconciler<K>,
{
    let runtime = reconciler.runtime();
    let policy = reconciler.policy();
    let api: Api<K> = Api::namespaced(
        runtime.client.clone(),
        &object.namespace().unwrap_or_default(),
    );
    let cached = object;
    let mut object = if runtime.written.may_trail(cached.as_ref()) {
        match current(&api, &cached).await? {
            Some(object) => object,
            None => return Ok(Requeue::OnChange),
        }
    } else {
        K::clone(&cached)
    };
    let lifecycle = Lifecycle {
        runtime,
        policy,
        api,
        after_status: AfterStatus::default(),
        previous_ready: object.condition(READY).cloned(),
    };
    let labels = ObjectLabels::of(&object);
    if object.meta().deletion_timestamp.is_some() {
        return delete(reconciler.as_ref(), &lifecycle, &object, &labels).await;
    }
    if !object.finalizers().iter().any(|f| f == FINALIZER) {
        let adding = finalizer::add(&lifecycle.api, &mut object, &policy.status_manager);
        lifecycle.step("finalizer", adding).await?;
    }
    runtime.metrics.record_suspend(&labels, object.suspended());
    if object.suspended() {
        tracing::info!(namespace = %labels.namespace, name = %labels.name, kind = %labels.kind, "reconciliation is suspended");
        return Ok(Requeue::OnChange);
    }
    if policy.announce_new_generation {
        announce(&lifecycle, &mut object).await?;
    }
    let outcome = reconciler.reconcile(&mut object, &lifecycle).await;
    finish(&lifecycle, &mut object, &outcome, &labels).await
}

/// The object as stored now (`None` once deleted), read when the cached copy is not the one this
/// process's last status write left: the cache trails the apiserver after a watch error until
/// its relist, and the status written at the end is built on what the reconcile starts from, so
/// a copy older than the last status write would put an older revision, inventory or artifact
/// back.
async fn current<K: LifecycleObject>(
    api: &Api<K>,
    cached: &K,
) -> Result<Option<K>, LifecycleError> {
    let name = cached.name_any();
    api.get_opt(&name)
        .await
        .map_err(|error| LifecycleError::Failed {
            message: format!(
                "reading {} {name} before reconciling it failed: {error}",
                K::kind(&())
            ),
            retry_after: None,
        })
}

async fn timed<K: LifecycleObject, T>(
    runtime: &RuntimeContext,
    step: &'static str,
    work: impl Future<Output = T>,
) -> T {
    let started = std::time::Instant::now();
    let output = work.await;
    let elapsed = started.elapsed();
    let kind = K::kind(&());
    runtime.metrics.record_step(&kind, step, elapsed);
    tracing::debug!(%kind, step, elapsed_ms = elapsed.as_millis(), "reconcile step done");
    output
}

/// Writes `Reconciling` when the generation is new or a reconcile was requested.
async fn announce<K: LifecycleObject>(
    lifecycle: &Lifecycle<'_, K>,
    object: &mut K,
) -> Result<(), StatusError> {
    let generation = object.meta().generation;
    let new_generation = generation != object.observed_generation();
    let message = if new_generation {
        format!(
            "processing object: new generation {} -> {}",
            object.observed_generation().unwrap_or(-1),
            generation.unwrap_or_default()
        )
    } else {
        "reconciliation in progress".to_owned()
    };
    mark_progressing(
        object.conditions_mut(),
        &lifecycle.policy.ready,
        &message,
        generation,
    );
    if new_generation || object.reconcile_request().requested {
        lifecycle.write_status(object).await?;
    }
    Ok(())
}

/// Concludes the outcome, writes the status once, records metrics, publishes the event and requeues.
async fn finish<K: LifecycleObject>(
    lifecycle: &Lifecycle<'_, K>,
    object: &mut K,
    outcome: &Outcome,
    labels: &ObjectLabels,
) -> Result<Requeue, LifecycleError> {
    let conclusion = conclude(object, &lifecycle.policy.ready, outcome);
    lifecycle
        .step("status", lifecycle.write_status(object))
        .await?;
    let metrics = &lifecycle.runtime.metrics;
    for type_ in std::iter::once(READY).chain(lifecycle.policy.metric_conditions.iter().copied()) {
        let status =
            conditions::status_of(object.conditions(), type_).unwrap_or(ConditionStatus::Unknown);
        metrics.record_condition(labels, type_, status);
    }
    let events = conclusion
        .event
        .into_iter()
        .chain(lifecycle.after_status.take());
    let publishing = async {
        for event in events {
            lifecycle.runtime.events.publish(&*object, event).await;
        }
    };
    lifecycle.step("events", publishing).await;
    requeue(lifecycle.runtime, object, conclusion.next, outcome)
}

fn requeue<K: FluxObject>(
    runtime: &RuntimeContext,
    object: &K,
    next: Next,
    outcome: &Outcome,
) -> Result<Requeue, LifecycleError> {
    match next {
        Next::Interval => {
            Ok(runtime
                .requeue_after_interval(object.interval_duration().unwrap_or(FALLBACK_INTERVAL)))
        }
        Next::After(delay) => Ok(Requeue::After(delay)),
        Next::Dependency => Ok(runtime.requeue_dependency()),
        Next::OnChange => Ok(Requeue::OnChange),
        Next::Failed(retry_after) => Err(LifecycleError::Failed {
            message: outcome
                .failure()
                .map(|f| f.message.clone())
                .unwrap_or_default(),
            retry_after,
        }),
    }
}

/// Runs the kind's cleanup, then releases the finalizer and forgets the object's metrics.
async fn delete<K, R>(
    reconciler: &R,
    lifecycle: &Lifecycle<'_, K>,
    object: &K,
    labels: &ObjectLabels,
) -> Result<Requeue, LifecycleError>
where
    K: LifecycleObject,
    R: Reconciler<K>,
{
    if !object.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::OnChange);
    }
    if let Err(failure) = reconciler.cleanup(object).await {
        let event =
            crate::events::ObjectEvent::error(failure.reason.clone(), failure.message.clone());
        lifecycle.runtime.events.publish(object, event).await;
        return Err(LifecycleError::Failed {
            message: failure.message,
            retry_after: failure.retry_after,
        });
    }
    finalizer::remove(&lifecycle.api, object, &lifecycle.policy.status_manager).await?;
    let metrics = &lifecycle.runtime.metrics;
    for type_ in std::iter::once(READY).chain(lifecycle.policy.metric_conditions.iter().copied()) {
        metrics.record_condition_deleted(labels, type_);
    }
    lifecycle.runtime.written.forget(object);
    tracing::info!(namespace = %labels.namespace, name = %labels.name, kind = %labels.kind, "cleanup done; finalizer released");
    Ok(Requeue::OnChange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_after_status_are_taken_once_in_order() {
        let queue = AfterStatus::default();
        queue.push(ObjectEvent::info("First", "one"));
        queue.push(ObjectEvent::info("Second", "two"));
        let reasons: Vec<String> = queue.take().into_iter().map(|event| event.reason).collect();
        assert_eq!(reasons, ["First", "Second"]);
        assert!(queue.take().is_empty(), "published events are not repeated");
    }
}
