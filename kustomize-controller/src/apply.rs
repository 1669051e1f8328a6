//! Server-side apply of a build in Flux's stages: each stage is dry-run whole before any of it is
//! written, and only new or drifted objects are patched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PropagationPolicy,
};
use serde_json::Value;
use sluice_api::kustomize::ObjectId;
use sluice_api::kustomize::annotations::{
    DISABLED, ENABLED, FORCE, RECONCILE, SSA, SSA_IF_NOT_PRESENT, SSA_IGNORE, SSA_MERGE,
};

use crate::cleanup::Cleanup;
use crate::cluster::Cluster;
use crate::drift::owned_fingerprint;
use crate::health::{self, Health};
use crate::ignore::IgnoreRules;
use crate::objects::{Owner, has_flag, kind_rank, object_id, split_api_version, subject};

/// Field manager of every apply, as in Flux.
pub const FIELD_MANAGER: &str = "kustomize-controller";
/// How often stage readiness is polled.
const STAGE_POLL: Duration = Duration::from_millis(500);
/// How long deleting an object for a forced re-create may take.
const RECREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub owner: Owner,
    /// `spec.force`: recreate objects on immutable-field errors.
    pub force: bool,
    /// Patch drifted objects; when false they are reported as [`Action::Drifted`].
    pub correct_drift: bool,
    /// Objects applied at once.
    pub concurrency: usize,
    /// Longest wait for CRDs, Namespaces and classes to become ready.
    pub stage_timeout: Duration,
    /// `spec.ignore`: paths left to the in-cluster value.
    pub ignore: Arc<IgnoreRules>,
    /// The managedFields clean-up made before applying an existing object.
    pub cleanup: Cleanup,
    /// `--custom-apply-stage-kinds` as (group, kind): applied after classes, before the rest.
    pub custom_stage_kinds: Vec<(String, String)>,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Skipped,
    /// Differs from the desired state; left alone because drift correction is off.
    Drifted,
}

impl Action {
    /// Flux's word for the action in change-set messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
            Self::Drifted => "drifted",
        }
    }
}

/// One applied object.
#[derive(Debug, Clone)]
pub struct Change {
    pub subject: String,
    pub id: ObjectId,
    pub version: String,
    pub action: Action,
    /// The object as sent, for health checks.
    pub desired: Value,
    /// What this apply wrote, if it wrote.
    pub written: Option<Written>,
}

/// The version an apply wrote: its resourceVersion, generation and the fingerprint of the
/// fields our field manager owns in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub resource_version: String,
    pub generation: Option<i64>,
    pub owned_fingerprint: u64,
}

/// Applying one object failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    #[error("{subject}: {reason}")]
    Invalid { subject: String, reason: String },
    #[error(
        "{subject}: no matches for kind {kind} in version {version}; install its CRD first or fix apiVersion ({reason})"
    )]
    UnknownKind {
        subject: String,
        kind: String,
        version: String,
        reason: String,
    },
    #[error("{subject} dry-run failed: {reason}")]
    DryRun { subject: String, reason: String },
    #[error("{subject} apply failed: {reason}")]
    Apply { subject: String, reason: String },
    #[error("{subject} read failed: {reason}")]
    Read { subject: String, reason: String },
    #[error("{subject} re-create failed: {reason}")]
    Recreate { subject: String, reason: String },
    #[error("{subjects} did not become ready within {seconds}s")]
    StageTimeout { subjects: String, seconds: u64 },
}

/// All changes made, and the errors that stopped the apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub changes: Vec<Change>,
    pub errors: Vec<ApplyError>,
}

/// Sorts objects into apply order (kind, then namespace and name).
pub fn sort_for_apply(objects: &mut [Value]) {
    objects.sort_by_key(|object| {
        let id = object_id(object);
        (kind_rank(&id.kind), id.kind, id.namespace, id.name)
    });
}

/// Flux's stages: cluster definitions and classes (each waited for), the custom stage kinds,
/// the rest.
fn stage_of(object: &Value, custom: &[(String, String)]) -> usize {
    let kind = object["kind"].as_str().unwrap_or_default();
    let group = split_api_version(object["apiVersion"].as_str().unwrap_or_default()).0;
    match kind {
        "CustomResourceDefinition" | "Namespace" | "ClusterRole" => 0,
        kind if kind.ends_with("Class") => 1,
        kind if custom.iter().any(|(g, k)| g == group && k == kind) => 2,
        _ => 3,
    }
}

/// Applies `objects` in stages: cluster definitions (then wait), classes (then wait), the rest.
pub async fn apply_staged(
    cluster: &Cluster,
    objects: Vec<Value>,
    options: &ApplyOptions,
) -> ApplyReport {
    let mut stages: [Vec<Value>; 4] = Default::default();
    for object in objects {
        stages[stage_of(&object, &options.custom_stage_kinds)].push(object);
    }
    let mut report = ApplyReport::default();
    for (index, mut stage) in stages.into_iter().enumerate() {
        if stage.is_empty() {
            continue;
        }
        sort_for_apply(&mut stage);
        let concurrency = options.concurrency.max(1);
        let planned: Vec<Result<Planned, ApplyError>> = stream::iter(stage)
            .map(|object| plan_one(cluster, object, options))
            .buffered(concurrency)
            .collect()
            .await;
        let mut plans = Vec::new();
        for result in planned {
            match result {
                Ok(plan) => plans.push(plan),
                Err(error) => report.errors.push(error),
            }
        }
        // Like Flux's SSA manager: one refused object keeps the whole stage unwritten.
        if !report.errors.is_empty() {
            return report;
        }
        let results: Vec<Result<Change, ApplyError>> = stream::iter(plans)
            .map(Planned::execute)
            .buffered(concurrency)
            .collect()
            .await;
        let mut stage_changes = Vec::new();
        for result in results {
            match result {
                Ok(change) => stage_changes.push(change),
                Err(error) => report.errors.push(error),
            }
        }
        for change in &stage_changes {
            if change.id.kind == "CustomResourceDefinition"
                && let Some(group) = change
                    .desired
                    .pointer("/spec/group")
                    .and_then(Value::as_str)
            {
                cluster.forget_group(group);
            }
        }
        let waiting: Vec<Change> = stage_changes
            .iter()
            .filter(|change| matches!(change.action, Action::Created | Action::Configured))
            .cloned()
            .collect();
        report.changes.extend(stage_changes);
        if !report.errors.is_empty() {
            return report;
        }
        if index < 2
            && !waiting.is_empty()
            && let Err(error) = wait_ready(cluster, &waiting, options.stage_timeout).await
        {
            report.errors.push(error);
            return report;
        }
    }
    report
}

async fn wait_ready(
    cluster: &Cluster,
    changes: &[Change],
    timeout: Duration,
) -> Result<(), ApplyError> {
    let started = Instant::now();
    loop {
        let mut pending = Vec::new();
        for change in changes {
            match health::check_object(cluster, &change.desired).await {
                Health::Current => {}
                _ => pending.push(change.subject.clone()),
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(ApplyError::StageTimeout {
                subjects: pending.join(", "),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(STAGE_POLL).await;
    }
}

/// The apiserver message and reason of an error, or the client error with credential output withheld.
fn reason_of(error: &kube::Error) -> String {
    sluice_runtime::describe_kube_error(error)
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether an apiserver error says an immutable field would change.
pub fn is_immutable_error(error: &kube::Error) -> bool {
    let kube::Error::Api(status) = error else {
        return false;
    };
    let message = status.message.to_ascii_lowercase();
    (status.code == 422 || status.code == 400)
        && [
            "field is immutable",
            "immutable",
            "cannot change",
            "may not be changed",
            "are forbidden",
        ]
        .iter()
        .any(|needle| message.contains(needle))
}

/// One object after its dry-run: nothing to write, or the write it needs.
enum Planned {
    Done(Change),
    Write {
        target: Target,
        desired: Value,
        action: Action,
        /// Delete the live object first (`force` and an immutable-field change).
        recreate: bool,
    },
}

impl Planned {
    /// Makes the planned write, if any.
    async fn execute(self) -> Result<Change, ApplyError> {
        match self {
            Self::Done(change) => Ok(change),
            Self::Write {
                target,
                desired,
                action,
                recreate,
            } => {
                if recreate {
                    target.recreate().await?;
                }
                let written = target.apply(&desired).await?;
                Ok(target.change(action, desired, Some(written)))
            }
        }
    }
}

/// Decides what one object needs (skip rules, a dry-run that validates new objects too, the
/// drift comparison) without writing anything.
async fn plan_one(
    cluster: &Cluster,
    mut desired: Value,
    options: &ApplyOptions,
) -> Result<Planned, ApplyError> {
    let target = Target::resolve(cluster, &mut desired).await?;
    let existing = target.read().await?;
    let excluded =
        |object: &Value| has_flag(object, RECONCILE, DISABLED) || has_flag(object, SSA, SSA_IGNORE);
    if excluded(&desired)
        || existing.as_ref().is_some_and(excluded)
        || (existing.is_some() && has_flag(&desired, SSA, SSA_IF_NOT_PRESENT))
    {
        return Ok(Planned::Done(target.change(Action::Skipped, desired, None)));
    }
    options.owner.label(&mut desired);
    if let Some(object) = desired.as_object_mut() {
        object.remove("status");
    }
    let mut cleaned = false;
    if let Some(live) = &existing {
        options.ignore.apply(&mut desired, live, FIELD_MANAGER);
        if options.correct_drift
            && !has_flag(&desired, SSA, SSA_MERGE)
            && let Some(patch) = options.cleanup.patch(live, FIELD_MANAGER)
        {
            target.clean_up(patch).await?;
            cleaned = true;
        }
    }
    let force = options.force || has_flag(&desired, FORCE, ENABLED);
    let write = |target, desired, action, recreate| {
        Ok(Planned::Write {
            target,
            desired,
            action,
            recreate,
        })
    };
    let preview = match target.dry_run(&desired).await {
        Ok(preview) => preview,
        Err(error) if existing.is_some() && force && is_immutable_error(&error) => {
            return write(target, desired, Action::Created, true);
        }
        Err(error) => return Err(target.dry_run_failed(&error)),
    };
    let Some(existing) = existing else {
        return write(target, desired, Action::Created, false);
    };
    if !cleaned && !has_drifted(&existing, &preview) {
        return Ok(Planned::Done(target.change(
            Action::Unchanged,
            desired,
            None,
        )));
    }
    if !options.correct_drift {
        return Ok(Planned::Done(target.change(Action::Drifted, desired, None)));
    }
    write(target, desired, Action::Configured, false)
}

/// Where one object is applied: its API, name, served version and subject for messages.
struct Target {
    api: Api<DynamicObject>,
    name: String,
    version: String,
    subject: String,
}

impl Target {
    /// Resolves the object's kind; a cluster-scoped object loses its `metadata.namespace`.
    async fn resolve(cluster: &Cluster, desired: &mut Value) -> Result<Self, ApplyError> {
        let subject = subject(desired);
        let api_version = desired["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let kind = desired["kind"].as_str().unwrap_or_default().to_owned();
        let (group, version) = split_api_version(&api_version);
        let resolved = cluster
            .resolve(&GroupVersionKind::gvk(group, version, &kind))
            .await
            .map_err(|error| ApplyError::UnknownKind {
                subject: subject.clone(),
                kind: kind.clone(),
                version: api_version.clone(),
                reason: reason_of(&error),
            })?;
        let namespace = desired
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|namespace| !namespace.is_empty())
            .map(str::to_owned);
        if resolved.namespaced && namespace.is_none() {
            return Err(ApplyError::Invalid {
                subject,
                reason:
                    "namespaced object has no metadata.namespace; set it or set spec.targetNamespace"
                        .to_owned(),
            });
        }
        if !resolved.namespaced
            && let Some(metadata) = desired.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("namespace");
        }
        Ok(Self {
            api: cluster.api(&resolved, namespace.as_deref()),
            name: desired
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            version: version.to_owned(),
            subject,
        })
    }

    fn change(&self, action: Action, desired: Value, written: Option<Written>) -> Change {
        Change {
            subject: subject(&desired),
            id: object_id(&desired),
            version: self.version.clone(),
            action,
            desired,
            written,
        }
    }

    /// The live object, if any.
    async fn read(&self) -> Result<Option<Value>, ApplyError> {
        let live = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|error| ApplyError::Read {
                subject: self.subject.clone(),
                reason: reason_of(&error),
            })?;
        Ok(live.map(|object| serde_json::to_value(object).unwrap_or(Value::Null)))
    }

    /// The object as the apiserver would store it, without writing it.
    async fn dry_run(&self, desired: &Value) -> Result<Value, kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let preview = self
            .api
            .patch(&self.name, &params, &Patch::Apply(desired))
            .await?;
        Ok(serde_json::to_value(preview).unwrap_or(Value::Null))
    }

    fn dry_run_failed(&self, error: &kube::Error) -> ApplyError {
        let mut reason = reason_of(error);
        if is_immutable_error(error) {
            reason.push_str(
                "; set spec.force or the kustomize.toolkit.fluxcd.io/force: enabled annotation to recreate it",
            );
        }
        ApplyError::DryRun {
            subject: self.subject.clone(),
            reason,
        }
    }

    /// Applies `desired` for real; returns what was written.
    async fn apply(&self, desired: &Value) -> Result<Written, ApplyError> {
        self.patch(desired)
            .await
            .map_err(|error| ApplyError::Apply {
                subject: self.subject.clone(),
                reason: reason_of(&error),
            })
    }

    async fn patch(&self, desired: &Value) -> Result<Written, kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = self
            .api
            .patch(&self.name, &params, &Patch::Apply(desired))
            .await?;
        let owned_fingerprint = owned_fingerprint(
            &serde_json::to_value(&applied).unwrap_or_default(),
            FIELD_MANAGER,
        );
        Ok(Written {
            resource_version: applied.metadata.resource_version.unwrap_or_default(),
            generation: applied.metadata.generation,
            owned_fingerprint,
        })
    }

    /// Makes the managedFields clean-up (a JSON patch) on the live object.
    async fn clean_up(&self, patch: Value) -> Result<(), ApplyError> {
        let failed = |reason: String| ApplyError::Apply {
            subject: self.subject.clone(),
            reason: format!("metadata.managedFields clean-up failed: {reason}"),
        };
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(|error| failed(error.to_string()))?;
        self.api
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Json::<()>(patch),
            )
            .await
            .map_err(|error| failed(reason_of(&error)))?;
        Ok(())
    }

    /// Deletes the live object and waits until it is gone.
    async fn recreate(&self) -> Result<(), ApplyError> {
        let failed = |reason: String| ApplyError::Recreate {
            subject: self.subject.clone(),
            reason,
        };
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match self.api.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(failed(reason_of(&error))),
        }
        let started = Instant::now();
        loop {
            match self.api.get_opt(&self.name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) if started.elapsed() < RECREATE_TIMEOUT => {
                    tokio::time::sleep(STAGE_POLL).await;
                }
                Ok(Some(_)) => {
                    return Err(failed(format!(
                        "still terminating after {}s; check its finalizers",
                        RECREATE_TIMEOUT.as_secs()
                    )));
                }
                Err(error) => return Err(failed(reason_of(&error))),
            }
        }
    }
}

/// Whether the dry-run result differs from the live object in labels, annotations or any
/// field outside `metadata` and `status`.
pub fn has_drifted(existing: &Value, preview: &Value) -> bool {
    let comparable = |object: &Value| {
        let mut object = object.clone();
        let labels = object.pointer("/metadata/labels").cloned();
        let annotations = object.pointer("/metadata/annotations").cloned();
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
            map.remove("metadata");
        }
        (labels, annotations, object)
    };
    comparable(existing) != comparable(preview)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drift_ignores_status_and_volatile_metadata() {
        let live = json!({"metadata": {"name": "a", "resourceVersion": "1", "labels": {"x": "1"}},
                          "spec": {"replicas": 1}, "status": {"ready": 1}});
        let same = json!({"metadata": {"name": "a", "resourceVersion": "2", "labels": {"x": "1"}},
                          "spec": {"replicas": 1}, "status": {"ready": 0}});
        assert!(!has_drifted(&live, &same));
        let spec_changed = json!({"metadata": {"labels": {"x": "1"}}, "spec": {"replicas": 2}});
        assert!(has_drifted(&live, &spec_changed));
        let label_changed = json!({"metadata": {"labels": {"x": "2"}}, "spec": {"replicas": 1}});
        assert!(has_drifted(&live, &label_changed));
    }

    #[test]
    fn orders_and_stages() {
        let mut objects = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "n"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "n"}}),
        ];
        sort_for_apply(&mut objects);
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["Namespace", "ServiceAccount", "Deployment", "Widget"]
        );
        let custom = [("cert-manager.io".to_owned(), "Issuer".to_owned())];
        let object =
            |api_version: &str, kind: &str| json!({"apiVersion": api_version, "kind": kind});
        let stage = |api_version, kind| stage_of(&object(api_version, kind), &custom);
        assert_eq!(
            stage("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            0
        );
        assert_eq!(stage("networking.k8s.io/v1", "IngressClass"), 1);
        assert_eq!(stage("cert-manager.io/v1", "Issuer"), 2);
        assert_eq!(stage("example.com/v1", "Issuer"), 3);
        assert_eq!(stage("apps/v1", "Deployment"), 3);
    }
}
