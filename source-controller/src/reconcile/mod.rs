//! Reconcilers for the source kinds and the lifecycle they share: finalizer, suspend, storage
//! checks, garbage collection, the final status write and events.

pub mod gitrepository;
pub mod ocirepository;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_api::meta::condition_type::{ARTIFACT_IN_STORAGE, READY, STORAGE_OPERATION_FAILED};
use sluice_api::meta::{Artifact, FINALIZER, reason};
use sluice_api::source::{GitRepository, OCIRepository};
use sluice_api::{FluxObject, SourceObject};
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_runtime::{ControllerRunner, ObjectEvent, ReconcileError, Requeue, RuntimeContext};

use crate::status::{self, Outcome};
use crate::storage::{Storage, StorageError, StoredFile};

/// Everything a reconcile needs: the runtime (client, events, metrics) and the artifact store.
pub struct SourceContext {
    pub runtime: RuntimeContext,
    pub storage: Arc<Storage>,
}

/// Runs the GitRepository and OCIRepository controllers until shutdown.
pub async fn run_controllers(context: Arc<SourceContext>) {
    let runtime = &context.runtime;
    let git = ControllerRunner::new(
        "gitrepository",
        runtime.watched_api::<GitRepository>(),
        runtime,
    )
    .run(gitrepository::reconcile, context.clone());
    let oci = ControllerRunner::new(
        "ocirepository",
        runtime.watched_api::<OCIRepository>(),
        runtime,
    )
    .run(ocirepository::reconcile, context.clone());
    tokio::join!(git, oci);
}

/// A reconcile failed in a way the runtime should retry with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Failed(String),
    #[error("writing status failed: {0}")]
    Status(#[from] sluice_runtime::status::StatusError),
    #[error(
        "updating finalizers of {name} failed: {source}; check RBAC allows patching the object"
    )]
    Finalizer { name: String, source: kube::Error },
    #[error("a blocking storage task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl ReconcileError for SourceError {}

/// A step failure: the condition it records and how the reconcile ends.
#[derive(Debug, Clone)]
pub struct StepFailure {
    /// Negative condition to set True (or `None` when the outcome itself carries the reason).
    pub condition: Option<&'static str>,
    pub reason: String,
    pub message: String,
    pub outcome: Outcome,
}

impl StepFailure {
    /// A retryable failure recorded as `condition=True`.
    pub fn failed(condition: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            condition: Some(condition),
            reason: reason.to_owned(),
            message: message.into(),
            outcome: Outcome::Failed,
        }
    }

    /// A retryable failure whose condition the step has already set (e.g. `SourceVerified=False`).
    pub fn recorded(reason: &str, message: impl Into<String>) -> Self {
        Self {
            condition: None,
            reason: reason.to_owned(),
            message: message.into(),
            outcome: Outcome::Failed,
        }
    }

    /// A missing dependency recorded as `condition=True`, retried after `--requeue-dependency`.
    pub fn waiting(condition: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Waiting,
            ..Self::failed(condition, reason, message)
        }
    }

    /// A spec that cannot work: `Stalled=True` with this reason.
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            condition: None,
            reason: reason.to_owned(),
            message: message.clone(),
            outcome: Outcome::Stalled {
                reason: reason.to_owned(),
                message,
            },
        }
    }

    /// A storage failure (`StorageOperationFailed`).
    pub fn storage(reason: &str, error: &StorageError) -> Self {
        Self::failed(STORAGE_OPERATION_FAILED, reason, error.to_string())
    }
}

/// What [`begin`] decided.
enum Begin {
    /// Continue with the reconcile.
    Proceed,
    /// Stop here and requeue like this.
    Done(Requeue),
}

fn api_for<K>(context: &SourceContext, object: &K) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    Api::namespaced(
        context.runtime.client.clone(),
        &object.namespace().unwrap_or_default(),
    )
}

/// The reconcile every source kind shares: finalizer and suspend handling, storage checks, the
/// kind's own `run` steps, then the status summary and requeue.
pub async fn reconcile_source<K, S>(
    context: &SourceContext,
    mut object: K,
    kind: &str,
    status_of: impl Fn(&K) -> Option<&S> + Copy,
    run: impl AsyncFnOnce(&SourceContext, &mut K) -> Result<(), StepFailure>,
) -> Result<Requeue, SourceError>
where
    K: SourceObject
        + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize,
{
    if let Begin::Done(requeue) = begin(context, &mut object, kind, status_of).await? {
        return Ok(requeue);
    }
    reconcile_storage(context, &mut object, kind).await?;
    let outcome = match run(context, &mut object).await {
        Ok(()) => Outcome::Succeeded,
        Err(failure) => {
            record_failure(context, &mut object, &failure).await;
            failure.outcome
        }
    };
    finish(context, &mut object, outcome, status_of).await
}

/// Handles deletion (storage cleanup, finalizer removal), adds the finalizer, honours suspend,
/// and writes a progressing status when the generation or a reconcile request is new.
async fn begin<K, S>(
    context: &SourceContext,
    object: &mut K,
    kind: &str,
    status_of: impl Fn(&K) -> Option<&S>,
) -> Result<Begin, SourceError>
where
    K: FluxObject
        + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize,
{
    let api = api_for(context, object);
    let name = object.name_any();
    let namespace = object.namespace().unwrap_or_default();
    let labels = sluice_runtime::ObjectLabels::of(object);
    if object.meta().deletion_timestamp.is_some() {
        let dir = Storage::object_dir(kind, &namespace, &name);
        let storage = context.storage.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || storage.remove_object(&dir)).await?
        {
            return Err(SourceError::Failed(format!(
                "removing the artifacts of {kind} {namespace}/{name} failed: {error}"
            )));
        }
        remove_finalizer(&api, object).await?;
        context
            .runtime
            .metrics
            .record_condition_deleted(&labels, READY);
        tracing::info!(kind, %namespace, %name, "artifacts removed; finalizer released");
        return Ok(Begin::Done(Requeue::OnChange));
    }
    if !object.finalizers().iter().any(|f| f == FINALIZER) {
        add_finalizer(&api, object).await?;
    }
    context
        .runtime
        .metrics
        .record_suspend(&labels, object.suspended());
    if object.suspended() {
        tracing::info!(kind, %namespace, %name, "reconciliation is suspended");
        return Ok(Begin::Done(Requeue::OnChange));
    }
    let generation = object.meta().generation;
    let new_generation = generation != object.observed_generation();
    let requested = object.reconcile_request().requested;
    let message = if new_generation {
        format!(
            "processing object: new generation {} -> {}",
            object.observed_generation().unwrap_or(-1),
            generation.unwrap_or_default()
        )
    } else {
        "reconciliation in progress".to_owned()
    };
    status::mark_progressing(object.conditions_mut(), &message, generation);
    if (new_generation || requested)
        && let Some(status) = status_of(object)
    {
        api_apply_status(context, &api, &name, status).await?;
    }
    Ok(Begin::Proceed)
}

async fn api_apply_status<K, S>(
    context: &SourceContext,
    api: &Api<K>,
    name: &str,
    status: &S,
) -> Result<(), SourceError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    sluice_runtime::apply_status(api, name, &context.runtime.controller_name, status).await?;
    Ok(())
}

async fn add_finalizer<K>(api: &Api<K>, object: &mut K) -> Result<(), SourceError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = if object.meta().finalizers.is_none() {
        serde_json::json!([{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
    } else {
        serde_json::json!([{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}])
    };
    patch_finalizers(api, object, patch).await?;
    object
        .meta_mut()
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(FINALIZER.to_owned());
    Ok(())
}

async fn remove_finalizer<K>(api: &Api<K>, object: &K) -> Result<(), SourceError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let Some(index) = object.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let patch = serde_json::json!([
        {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{index}")}
    ]);
    patch_finalizers(api, object, patch).await
}

async fn patch_finalizers<K>(
    api: &Api<K>,
    object: &K,
    patch: serde_json::Value,
) -> Result<(), SourceError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = object.name_any();
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| SourceError::Failed(format!("building the finalizer patch failed: {e}")))?;
    match api
        .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
        Err(source) => Err(SourceError::Finalizer { name, source }),
    }
}

/// Verifies the stored artifact, refreshes its URL and garbage collects superseded files.
/// A missing or corrupted file clears `status.artifact`.
async fn reconcile_storage<K>(
    context: &SourceContext,
    object: &mut K,
    kind: &str,
) -> Result<(), SourceError>
where
    K: SourceObject + Resource<DynamicType = ()>,
{
    let generation = object.meta().generation;
    let dir = Storage::object_dir(
        kind,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    );
    let current = object.artifact().cloned();
    if let Some(artifact) = current.as_ref() {
        let storage = context.storage.clone();
        let (path, digest) = (artifact.path.clone(), artifact.digest.clone());
        let verified = tokio::task::spawn_blocking(move || {
            let exists = storage.resolve(&path).map(|p| p.is_file()).unwrap_or(false);
            let valid = storage.verify(&path, &digest)?;
            if exists && !valid {
                storage.remove(&path)?;
            }
            Ok::<_, StorageError>((exists, valid))
        })
        .await?;
        match verified {
            Ok((_, true)) => {
                let url = context.storage.url_for(&artifact.path);
                if let Some(stored) = object.artifact_mut().as_mut() {
                    stored.url = url;
                }
                let message = format!("stored artifact for revision '{}'", artifact.revision);
                status::mark_true(
                    object.conditions_mut(),
                    ARTIFACT_IN_STORAGE,
                    reason::SUCCEEDED,
                    &message,
                    generation,
                );
            }
            Ok((exists, false)) => {
                if exists {
                    let message = format!(
                        "failed to verify artifact: digest mismatch for '{}'; removed it and building a new one",
                        artifact.path
                    );
                    context
                        .runtime
                        .events
                        .publish(
                            &*object,
                            ObjectEvent::error("ArtifactVerificationFailed", message),
                        )
                        .await;
                }
                *object.artifact_mut() = None;
                conditions::remove(object.conditions_mut(), ARTIFACT_IN_STORAGE);
                status::mark_progressing(
                    object.conditions_mut(),
                    "building artifact: disappeared from storage",
                    generation,
                );
            }
            Err(error) => {
                return Err(SourceError::Failed(format!(
                    "verifying the stored artifact failed: {error}"
                )));
            }
        }
    } else {
        conditions::remove(object.conditions_mut(), ARTIFACT_IN_STORAGE);
    }
    garbage_collect(context, dir, object.artifact().map(|a| a.path.clone())).await;
    Ok(())
}

/// Removes superseded artifacts; failures are logged, never fatal.
pub async fn garbage_collect(context: &SourceContext, dir: String, current: Option<String>) {
    let storage = context.storage.clone();
    let log_dir = dir.clone();
    let result =
        tokio::task::spawn_blocking(move || storage.garbage_collect(&dir, current.as_deref()))
            .await;
    match result {
        Ok(Ok(removed)) if !removed.is_empty() => {
            tracing::debug!(dir = %log_dir, count = removed.len(), "garbage collected artifacts");
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(dir = %log_dir, %error, "garbage collection failed"),
        Err(error) => tracing::warn!(dir = %log_dir, %error, "garbage collection task failed"),
    }
}

/// Builds the status artifact for a stored file.
pub fn artifact_for(
    context: &SourceContext,
    stored: &StoredFile,
    revision: &str,
    metadata: std::collections::BTreeMap<String, String>,
) -> Artifact {
    Artifact {
        digest: stored.digest.clone(),
        last_update_time: Time(now_seconds()),
        metadata,
        path: stored.path.clone(),
        revision: revision.to_owned(),
        size: i64::try_from(stored.size).ok(),
        url: context.storage.url_for(&stored.path),
    }
}

fn now_seconds() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Records a step failure in the conditions and emits a warning event.
async fn record_failure<K>(context: &SourceContext, object: &mut K, failure: &StepFailure)
where
    K: FluxObject,
    K::DynamicType: Default,
{
    let generation = object.meta().generation;
    if let Some(condition) = failure.condition {
        status::mark_true(
            object.conditions_mut(),
            condition,
            &failure.reason,
            &failure.message,
            generation,
        );
    }
    context
        .runtime
        .events
        .publish(
            &*object,
            ObjectEvent::error(failure.reason.clone(), failure.message.clone()),
        )
        .await;
}

/// Computes `Ready`, writes the status and returns how to requeue.
async fn finish<K, S>(
    context: &SourceContext,
    object: &mut K,
    outcome: Outcome,
    status_of: impl Fn(&K) -> Option<&S>,
) -> Result<Requeue, SourceError>
where
    K: FluxObject
        + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize,
{
    let generation = object.meta().generation;
    if status::finish(object.conditions_mut(), &outcome, generation)
        && let Some(generation) = generation
    {
        object.set_observed_generation(generation);
    }
    if let Some(token) = object.reconcile_request().token.map(str::to_owned) {
        object.set_last_handled_reconcile_at(&token);
    }
    let api = api_for(context, object);
    let name = object.name_any();
    if let Some(status) = status_of(object) {
        api_apply_status(context, &api, &name, status).await?;
    }
    let labels = sluice_runtime::ObjectLabels::of(object);
    let ready =
        conditions::status_of(object.conditions(), READY).unwrap_or(ConditionStatus::Unknown);
    context
        .runtime
        .metrics
        .record_condition(&labels, READY, ready);
    let interval = object
        .interval_duration()
        .unwrap_or(Duration::from_secs(60));
    match outcome {
        Outcome::Succeeded => Ok(context.runtime.requeue_after_interval(interval)),
        Outcome::Stalled { .. } => Ok(Requeue::OnChange),
        Outcome::Waiting => Ok(context.runtime.requeue_dependency()),
        Outcome::Failed => {
            let message = conditions::get(object.conditions(), READY)
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "reconcile failed".to_owned());
            Err(SourceError::Failed(message))
        }
    }
}
