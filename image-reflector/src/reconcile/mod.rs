//! The ImageRepository and ImagePolicy reconcilers on the shared lifecycle, the watch that
//! re-evaluates policies when a repository's scan revision changes, and the storage GC.

mod access;
pub mod imagepolicy;
pub mod imagerepository;
pub mod scan;
mod watches;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Api;
use kube::runtime::watcher;
use sluice_api::image::{ImagePolicy, ImageRepository};
use sluice_api::meta::reason;
use sluice_registry::RegistryClient;
use sluice_runtime::lifecycle::{self, LifecycleError, Policy, ReadyRule, Reconciler};
use sluice_runtime::{
    ControllerRunner, Failure, Lifecycle, Outcome, Requeue, RuntimeContext, backing_off,
};

use crate::storage::{RepositoryKey, TagStore};

/// Flux's image reasons not in `sluice_api::meta::reason`.
pub mod reasons {
    pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    pub const INTERVAL_NOT_CONFIGURED: &str = "IntervalNotConfigured";
    pub const INVALID_POLICY: &str = "InvalidPolicy";
    pub const INVALID_EXCLUSION_LIST: &str = "InvalidExclusionList";
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
}

/// The controller's own settings (the runtime flags live in [`RuntimeContext`]).
#[derive(Debug, Clone)]
pub struct ImageFlags {
    /// Refuse ImagePolicies referring to ImageRepositories in other namespaces.
    pub no_cross_namespace_refs: bool,
    /// How often tags of ImageRepositories that no longer exist are deleted; zero disables it.
    pub gc_interval: Duration,
}

/// Everything a reconcile needs: runtime, tag store, registry client and flags.
pub struct ImageContext {
    pub runtime: RuntimeContext,
    pub store: Arc<TagStore>,
    pub registry: RegistryClient,
    pub flags: ImageFlags,
    /// ImageRepositories whose last reconcile failed (at most one entry per repository).
    pub failed_scans: FailedScans,
}

/// The ImageRepositories whose last reconcile failed, so the retry scans again instead of
/// waiting for the interval.
#[derive(Debug, Default)]
pub struct FailedScans(Mutex<HashSet<RepositoryKey>>);

impl FailedScans {
    fn contains(&self, key: &RepositoryKey) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }

    fn record(&self, key: &RepositoryKey, failed: bool) {
        let mut keys = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if failed {
            keys.insert(key.clone());
        } else {
            keys.remove(key);
        }
    }
}

fn policy_for<K>(context: &ImageContext, message: fn(&K) -> String) -> Policy<K> {
    Policy {
        status_manager: context.runtime.controller_name.clone(),
        ready: ReadyRule::Outcome {
            reason: reason::SUCCEEDED,
            message,
        },
        metric_conditions: &[],
        announce_new_generation: true,
    }
}

/// ImageRepository on the shared lifecycle.
pub struct RepositoryReconciler {
    context: Arc<ImageContext>,
    policy: Policy<ImageRepository>,
}

impl Reconciler<ImageRepository> for RepositoryReconciler {
    fn runtime(&self) -> &RuntimeContext {
        &self.context.runtime
    }

    fn policy(&self) -> &Policy<ImageRepository> {
        &self.policy
    }

    async fn reconcile(
        &self,
        object: &mut ImageRepository,
        lifecycle: &Lifecycle<'_, ImageRepository>,
    ) -> Outcome {
        match imagerepository::reconcile(&self.context, object, lifecycle).await {
            Ok(()) => Outcome::Success,
            Err(outcome) => outcome,
        }
    }

    async fn cleanup(&self, object: &ImageRepository) -> Result<(), Failure> {
        let key = imagerepository::key_of(object);
        self.context
            .store
            .remove(&key)
            .await
            .map_err(|e| Failure::new(reasons::STORAGE_OPERATION_FAILED, e.to_string()))
    }
}

/// ImagePolicy on the shared lifecycle.
pub struct PolicyReconciler {
    context: Arc<ImageContext>,
    policy: Policy<ImagePolicy>,
}

impl Reconciler<ImagePolicy> for PolicyReconciler {
    fn runtime(&self) -> &RuntimeContext {
        &self.context.runtime
    }

    fn policy(&self) -> &Policy<ImagePolicy> {
        &self.policy
    }

    async fn reconcile(
        &self,
        object: &mut ImagePolicy,
        lifecycle: &Lifecycle<'_, ImagePolicy>,
    ) -> Outcome {
        match imagepolicy::reconcile(&self.context, object, lifecycle).await {
            Ok(()) => Outcome::Success,
            Err(outcome) => outcome,
        }
    }
}

/// The shared lifecycle, then a requeue at the next scan time when no scan was due (Flux
/// requeues after the rest of the interval, not a whole one).
async fn reconcile_repository(
    object: Arc<ImageRepository>,
    reconciler: Arc<RepositoryReconciler>,
) -> Result<Requeue, LifecycleError> {
    let context = reconciler.context.clone();
    let key = imagerepository::key_of(&object);
    let stored = matches!(context.store.get(&key).await, Ok(Some(_)));
    let retrying = context.failed_scans.contains(&key);
    let next_scan = imagerepository::next_scan_in(&object, stored, retrying);
    let result = lifecycle::reconcile(object, reconciler).await;
    context.failed_scans.record(&key, result.is_err());
    Ok(match (result?, next_scan) {
        (Requeue::After(interval), Some(next)) => Requeue::After(interval.min(next)),
        (requeue, _) => requeue,
    })
}

/// Runs both reconcilers and the storage GC until shutdown.
pub async fn run_controllers(context: Arc<ImageContext>) {
    let runtime = &context.runtime;
    let repositories = RepositoryReconciler {
        policy: policy_for(&context, imagerepository::scan_summary),
        context: context.clone(),
    };
    let policies = PolicyReconciler {
        policy: policy_for(&context, imagepolicy::resolved_summary),
        context: context.clone(),
    };
    let repository_api: Api<ImageRepository> = runtime.watched_api();
    let repository_runner =
        ControllerRunner::new("imagerepository", repository_api.clone(), runtime)
            .run(reconcile_repository, Arc::new(repositories));
    let policy_runner = ControllerRunner::new("imagepolicy", runtime.watched_api(), runtime)
        .customize(move |controller| {
            let trigger = watches::RevisionTrigger::new(controller.store());
            controller.watches_stream(
                backing_off(repository_api.clone(), watcher::Config::default()),
                move |repo| trigger.policies_to_evaluate(&repo),
            )
        })
        .run(lifecycle::reconcile, Arc::new(policies));
    tokio::join!(
        repository_runner,
        policy_runner,
        collect_garbage(context.clone())
    );
    context.runtime.events.flush().await;
}

/// Every `--gc-interval`, while leading, deletes stored tags of ImageRepositories that no
/// longer exist (deletion normally removes them; this catches finalizers removed by hand).
async fn collect_garbage(context: Arc<ImageContext>) {
    let period = context.flags.gc_interval;
    if period.is_zero() {
        return;
    }
    let shutdown = context.runtime.shutdown.token();
    let api: Api<ImageRepository> = context.runtime.watched_api();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        if !context.runtime.leadership.is_leader() {
            continue;
        }
        let params = kube::api::ListParams::default();
        let listed = tokio::time::timeout(Duration::from_secs(60), api.list(&params));
        let live: HashSet<_> = match listed.await {
            Ok(Ok(list)) => list.items.iter().map(imagerepository::key_of).collect(),
            Ok(Err(error)) => {
                tracing::warn!(error = %sluice_runtime::describe_kube_error(&error), "storage GC: listing ImageRepositories failed");
                continue;
            }
            Err(_) => {
                tracing::warn!("storage GC: listing ImageRepositories timed out");
                continue;
            }
        };
        match context.store.retain(&live).await {
            Ok(removed) => tracing::info!(removed, "storage GC done"),
            Err(error) => tracing::warn!(%error, "storage GC failed"),
        }
    }
}
