//! Reconciling one Kustomization: source, dependencies, fetch, build, apply, prune, health, status.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sluice_api::FluxObject;
use sluice_api::duration::format_duration;
use sluice_api::kustomize::{
    DeletionPolicy, Kustomization, KustomizationStatus, SubstituteKind, SubstituteStrategy,
};
use sluice_api::meta::condition_type::{HEALTHY, READY};
use sluice_api::meta::{Artifact, FINALIZER, reason};
use sluice_artifact::source::SourceError;
use sluice_runtime::conditions::{get, is_true};
use sluice_runtime::events::METADATA_REVISION;
use sluice_runtime::{ConditionStatus, ObjectEvent, ObjectLabels, ReconcileError, Requeue};

use super::{Context, PendingHealth, STATUS_MANAGER};
use crate::apply::{Action, ApplyOptions, Change, Cluster, Owner, apply_staged, split_api_version};
use crate::build::{BuildError, build, subject};
use crate::dependson::check_dependencies;
use crate::drift::DriftMode;
use crate::health::{HealthReport, check_all};
use crate::inventory;
use crate::sops::{self, AgeIdentities};
use crate::source::{source_artifact, source_namespace};
use crate::status::{self, record_history};
use crate::substitute::{substitute_all, validate_names};

/// Metadata key (qualified with the API group in events) for the origin revision.
const METADATA_ORIGIN_REVISION: &str = "originRevision";
/// Artifact metadata holding the upstream revision of OCI artifacts.
const OCI_REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";
/// Event reason for objects deleted with their Kustomization.
const PRUNED: &str = "Pruned";
/// How long CRDs, Namespaces and classes may take to become ready during apply.
const STAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A reconcile could not record its result; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileFailure {
    #[error(transparent)]
    Status(#[from] sluice_runtime::status::StatusError),
    #[error(
        "updating the finalizers of Kustomization {name} failed: {source}; retrying (check RBAC allows patching kustomizations)"
    )]
    Finalizer { name: String, source: kube::Error },
}

impl ReconcileError for ReconcileFailure {}

/// Why the blocking build step failed.
#[derive(Debug, thiserror::Error)]
enum BuildFailure {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{0}")]
    Decryption(String),
}

/// How a reconcile ended.
enum Outcome {
    /// Applied (and healthy): Ready=True.
    Applied(Applied),
    /// Failed; retried after `requeue`.
    Failed {
        reason: &'static str,
        message: String,
        requeue: Duration,
    },
    /// Cannot progress without a spec change.
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Applied, health checks still pending.
    WaitingForHealth { message: String, requeue: Duration },
}

struct Applied {
    revision: String,
    health_checked: bool,
    health_duration: Duration,
}

/// Per-reconcile state.
struct Run {
    context: Arc<Context>,
    kustomization: Arc<Kustomization>,
    api: Api<Kustomization>,
    status: KustomizationStatus,
    generation: Option<i64>,
    started: Instant,
    /// Digest of the last build, for history.
    digest: Option<String>,
    artifact: Option<Artifact>,
    changes: Vec<Change>,
    deleted: Vec<String>,
}

/// Reconciles one Kustomization.
pub async fn reconcile(
    kustomization: Arc<Kustomization>,
    context: Arc<Context>,
) -> Result<Requeue, ReconcileFailure> {
    let namespace = kustomization.namespace().unwrap_or_default();
    let api: Api<Kustomization> = Api::namespaced(context.runtime.client.clone(), &namespace);
    if kustomization.metadata.deletion_timestamp.is_some() {
        return finalize(&context, &kustomization, &api).await;
    }
    if !kustomization.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = kustomization.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        patch_finalizers(&api, &kustomization, finalizers).await?;
    }
    let labels = ObjectLabels::of(kustomization.as_ref());
    context
        .runtime
        .metrics
        .record_suspend(&labels, kustomization.spec.suspend);
    if kustomization.spec.suspend {
        tracing::info!(namespace, name = %kustomization.name_any(), "reconciliation is suspended");
        return Ok(Requeue::OnChange);
    }
    let mut run = Run {
        context: context.clone(),
        api,
        status: kustomization.status.clone().unwrap_or_default(),
        generation: kustomization.metadata.generation,
        kustomization,
        started: Instant::now(),
        digest: None,
        artifact: None,
        changes: Vec::new(),
        deleted: Vec::new(),
    };
    let outcome = run.execute().await;
    run.finish(outcome).await
}

fn retry_interval(kustomization: &Kustomization) -> Duration {
    kustomization
        .effective_retry_interval()
        .unwrap_or(Duration::from_secs(60))
}

impl Run {
    fn key(&self) -> String {
        format!(
            "{}/{}",
            self.kustomization.namespace().unwrap_or_default(),
            self.kustomization.name_any()
        )
    }

    fn failed(&self, reason: &'static str, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            reason,
            message: message.into(),
            requeue: retry_interval(&self.kustomization),
        }
    }

    /// Marks Healthy=False with `message` and fails the reconcile with HealthCheckFailed.
    fn health_failed(&mut self, message: String) -> Outcome {
        status::set_healthy(
            &mut self.status,
            self.generation,
            Some((
                ConditionStatus::False,
                reason::HEALTH_CHECK_FAILED,
                &message,
            )),
        );
        self.failed(reason::HEALTH_CHECK_FAILED, message)
    }

    async fn execute(&mut self) -> Outcome {
        let kustomization = self.kustomization.clone();
        if let Some(outcome) = self.validate() {
            return outcome;
        }
        let timeout = match kustomization.effective_timeout() {
            Ok(timeout) => timeout,
            Err(error) => {
                return Outcome::Stalled {
                    reason: reason::RECONCILIATION_FAILED,
                    message: format!("spec.timeout or spec.interval is invalid: {error}"),
                };
            }
        };
        let namespace = kustomization.namespace().unwrap_or_default();
        let source_ns = source_namespace(&kustomization);
        if self.context.flags.no_cross_namespace_refs && source_ns != namespace {
            return Outcome::Stalled {
                reason: reason::ACCESS_DENIED,
                message: format!(
                    "can't access '{}/{}/{}', cross-namespace references have been blocked",
                    kustomization.spec.source_ref.kind.as_str(),
                    source_ns,
                    kustomization.spec.source_ref.name
                ),
            };
        }
        let client = self.context.runtime.client.clone();
        let artifact = match source_artifact(&client, &kustomization).await {
            Ok(Some(artifact)) => artifact,
            Ok(None) => {
                return Outcome::Failed {
                    reason: reason::ARTIFACT_FAILED,
                    message: "Source is not ready, artifact not found".to_owned(),
                    requeue: self.context.runtime.flags.requeue_dependency,
                };
            }
            Err(error @ SourceError::ExternalArtifact) => {
                return Outcome::Stalled {
                    reason: reason::FEATURE_GATE_DISABLED,
                    message: error.to_string(),
                };
            }
            Err(error) => return self.failed(reason::ARTIFACT_FAILED, error.to_string()),
        };
        let revision = artifact.revision.clone();
        self.artifact = Some(artifact.clone());

        if let Err(error) = check_dependencies(&client, &kustomization, &revision).await {
            let message = format!(
                "Dependencies do not meet ready condition ({error}), retrying in {}",
                format_duration(self.context.runtime.flags.requeue_dependency)
            );
            self.context
                .runtime
                .events
                .publish(
                    kustomization.as_ref(),
                    ObjectEvent::info(reason::DEPENDENCY_NOT_READY, message.clone())
                        .with_revision(revision.clone()),
                )
                .await;
            return Outcome::Failed {
                reason: reason::DEPENDENCY_NOT_READY,
                message,
                requeue: self.context.runtime.flags.requeue_dependency,
            };
        }

        let up_to_date = is_true(&self.status.conditions, READY)
            && self.status.last_applied_revision.as_deref() == Some(revision.as_str())
            && self.status.observed_generation == self.generation;
        if !up_to_date {
            status::mark_progressing(
                &mut self.status,
                self.generation,
                &format!(
                    "Fetching manifests for revision {revision} with a timeout of {}",
                    format_duration(timeout)
                ),
            );
            if let Err(error) = self.write_status().await {
                tracing::warn!(key = %self.key(), %error, "writing progress status failed");
            }
        }

        let root = match self.context.fetcher.fetch(&artifact).await {
            Ok(root) => root,
            Err(error) if error.is_not_found() => {
                return Outcome::Failed {
                    reason: reason::ARTIFACT_FAILED,
                    message: error.to_string(),
                    requeue: self.context.runtime.flags.requeue_dependency,
                };
            }
            Err(error) => return self.failed(reason::ARTIFACT_FAILED, error.to_string()),
        };
        self.status.last_attempted_revision = Some(revision.clone());

        let identities = match self.age_identities(&client).await {
            Ok(identities) => identities,
            Err(message) => return self.failed(reason::BUILD_FAILED, message),
        };
        let path = kustomization.spec.path.clone().unwrap_or_default();
        let spec = kustomization.spec.clone();
        let built = tokio::task::spawn_blocking(move || {
            let mut objects = build(&root, &path, &spec)?;
            if let Some(identities) = identities {
                sops::decrypt_objects(&mut objects, &identities)
                    .map_err(BuildFailure::Decryption)?;
            }
            Ok::<_, BuildFailure>(objects)
        })
        .await;
        let mut objects = match built {
            Ok(Ok(objects)) => objects,
            Ok(Err(BuildFailure::Decryption(message))) => {
                return self.failed(reason::BUILD_FAILED, message);
            }
            Ok(Err(BuildFailure::Build(error))) => match error {
                BuildError::PathNotFound(path) => {
                    return self.failed(
                        reason::ARTIFACT_FAILED,
                        format!("kustomization path not found: {path:?} does not exist in revision {revision}"),
                    );
                }
                error @ (BuildError::Unsupported { .. } | BuildError::RemoteComponent(_)) => {
                    return Outcome::Stalled {
                        reason: reason::BUILD_FAILED,
                        message: error.to_string(),
                    };
                }
                error => return self.failed(reason::BUILD_FAILED, error.to_string()),
            },
            Err(error) => {
                return self.failed(reason::BUILD_FAILED, format!("build task failed: {error}"));
            }
        };
        if let Some(outcome) = self.check_encrypted(&objects) {
            return outcome;
        }
        if let Err(message) = self.substitute(&client, &mut objects).await {
            return self.failed(reason::BUILD_FAILED, message);
        }
        let digest = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(
                serde_json::to_vec(&objects).unwrap_or_default()
            ))
        );
        self.digest = Some(digest.clone());

        let cluster = match self.context.tenancy.cluster_for(&kustomization).await {
            Ok(cluster) => cluster,
            Err(error) => return self.failed(reason::RECONCILIATION_FAILED, error.to_string()),
        };
        let owner = Owner {
            name: kustomization.name_any(),
            namespace: namespace.clone(),
        };
        let detect_only = DriftMode::of(&kustomization) == DriftMode::DetectOnly
            && self.status.last_applied_revision.as_deref() == Some(revision.as_str())
            && self.status.observed_generation == self.generation;
        let options = ApplyOptions {
            owner: owner.clone(),
            force: kustomization.spec.force,
            correct_drift: !detect_only,
            concurrency: usize::from(self.context.flags.concurrent_ssa),
            stage_timeout: STAGE_TIMEOUT.min(timeout),
        };
        let report =
            match tokio::time::timeout(timeout, apply_staged(&cluster, objects, &options)).await {
                Ok(report) => report,
                Err(_) => {
                    return self.failed(
                        reason::RECONCILIATION_FAILED,
                        format!(
                            "apply did not finish within the timeout of {}",
                            format_duration(timeout)
                        ),
                    );
                }
            };
        let old_inventory = self.status.inventory.clone().unwrap_or_default();
        let new_inventory = inventory::from_changes(&report.changes);
        self.track_drift(&cluster, &report.changes).await;
        self.changes = report.changes;
        if !report.errors.is_empty() {
            let applied = inventory::merge(&old_inventory, &new_inventory.entries);
            self.status.inventory = Some(applied);
            let message = report
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            return self.failed(reason::RECONCILIATION_FAILED, message);
        }
        self.report_drift(&kustomization).await;

        let stale = inventory::stale(&old_inventory, &new_inventory);
        let mut final_inventory = new_inventory;
        if kustomization.spec.prune && !stale.is_empty() {
            let pruned = inventory::delete_entries(&cluster, &stale, &owner, None).await;
            self.deleted = pruned.deleted;
            if !pruned.failed.is_empty() {
                let survivors: Vec<_> = pruned
                    .failed
                    .iter()
                    .map(|(entry, _)| entry.clone())
                    .collect();
                final_inventory = inventory::merge(&final_inventory, &survivors);
                self.status.inventory = Some(final_inventory);
                let message = pruned
                    .failed
                    .iter()
                    .map(|(entry, reason)| format!("{}: {reason}", entry.id))
                    .collect::<Vec<_>>()
                    .join("\n");
                return self.failed(reason::PRUNE_FAILED, format!("pruning failed: {message}"));
            }
        }
        self.status.inventory = Some(final_inventory);
        self.publish_change_set(&revision).await;

        let targets = match self.health_targets() {
            Ok(targets) => targets,
            Err(message) => {
                return Outcome::Stalled {
                    reason: reason::HEALTH_CHECK_FAILED,
                    message,
                };
            }
        };
        if targets.is_empty() {
            return Outcome::Applied(Applied {
                revision,
                health_checked: false,
                health_duration: Duration::ZERO,
            });
        }
        self.assess_health(&cluster, &targets, &digest, timeout, revision)
            .await
    }

    /// Spec fields this controller does not implement stall with a message naming them.
    fn validate(&self) -> Option<Outcome> {
        let spec = &self.kustomization.spec;
        let unsupported = |field: &str, what: &str| {
            Some(Outcome::Stalled {
                reason: reason::RECONCILIATION_FAILED,
                message: format!(
                    "{field} is not supported by this controller: {what}; remove it from the Kustomization"
                ),
            })
        };
        if !spec.health_check_exprs.is_empty() {
            return unsupported(
                "spec.healthCheckExprs",
                "CEL health checks are not implemented",
            );
        }
        if spec
            .depends_on
            .iter()
            .any(|dependency| dependency.ready_expr.is_some())
        {
            return unsupported(
                "spec.dependsOn[].readyExpr",
                "CEL readiness expressions are not implemented",
            );
        }
        if !spec.ignore.is_empty() {
            return unsupported("spec.ignore", "drift-ignore rules are not implemented");
        }
        if spec
            .kube_config
            .as_ref()
            .is_some_and(|config| config.config_map_ref.is_some())
        {
            return unsupported(
                "spec.kubeConfig.configMapRef",
                "cloud-provider kubeconfigs are not implemented; use secretRef",
            );
        }
        if spec
            .decryption
            .as_ref()
            .is_some_and(|decryption| decryption.secret_ref.is_none())
        {
            return unsupported(
                "spec.decryption without secretRef",
                "only age identities from decryption.secretRef are implemented (no KMS, Vault or --sops-age-secret)",
            );
        }
        if self.context.flags.no_cross_namespace_refs {
            let own = self.kustomization.namespace().unwrap_or_default();
            if let Some(dependency) = spec
                .depends_on
                .iter()
                .find(|dependency| dependency.namespace.as_deref().is_some_and(|ns| ns != own))
            {
                return Some(Outcome::Stalled {
                    reason: reason::ACCESS_DENIED,
                    message: format!(
                        "can't access 'Kustomization/{}/{}', cross-namespace references have been blocked",
                        dependency.namespace.as_deref().unwrap_or_default(),
                        dependency.name
                    ),
                });
            }
        }
        None
    }

    /// The age identities of `spec.decryption.secretRef`, when decryption is configured.
    async fn age_identities(&self, client: &Client) -> Result<Option<AgeIdentities>, String> {
        let Some(reference) = self
            .kustomization
            .spec
            .decryption
            .as_ref()
            .and_then(|decryption| decryption.secret_ref.as_ref())
        else {
            return Ok(None);
        };
        let namespace = self.kustomization.namespace().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let secret = api
            .get_opt(&reference.name)
            .await
            .map_err(|error| {
                format!(
                    "reading decryption Secret {namespace}/{} failed: {error}",
                    reference.name
                )
            })?
            .ok_or_else(|| {
                format!(
                    "decryption Secret {namespace}/{} not found; create it with the age identity under a *.agekey key",
                    reference.name
                )
            })?;
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect();
        AgeIdentities::from_secret_data(&data)
            .map(Some)
            .map_err(|error| format!("decryption Secret {namespace}/{}: {error}", reference.name))
    }

    /// An encrypted Secret with no decryption configured is an error, as in Flux.
    fn check_encrypted(&self, objects: &[Value]) -> Option<Outcome> {
        if self.kustomization.spec.decryption.is_some() {
            return None;
        }
        let encrypted = objects
            .iter()
            .find(|object| object["kind"] == "Secret" && sops::is_encrypted(object))?;
        Some(self.failed(
            reason::BUILD_FAILED,
            format!(
                "{} is SOPS-encrypted but spec.decryption is not set; configure decryption or commit it unencrypted",
                subject(encrypted)
            ),
        ))
    }

    async fn substitute(&self, client: &Client, objects: &mut [Value]) -> Result<(), String> {
        let Some(post_build) = &self.kustomization.spec.post_build else {
            return Ok(());
        };
        let always = post_build.substitute_strategy == Some(SubstituteStrategy::Always);
        if !always && post_build.substitute.is_empty() && post_build.substitute_from.is_empty() {
            return Ok(());
        }
        let namespace = self.kustomization.namespace().unwrap_or_default();
        let mut variables = BTreeMap::new();
        for reference in &post_build.substitute_from {
            let data: Option<BTreeMap<String, String>> = match reference.kind {
                SubstituteKind::ConfigMap => {
                    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
                    api.get_opt(&reference.name)
                        .await
                        .map_err(|error| {
                            format!(
                                "reading substituteFrom ConfigMap {namespace}/{} failed: {error}",
                                reference.name
                            )
                        })?
                        .map(|config| config.data.unwrap_or_default())
                }
                SubstituteKind::Secret => {
                    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
                    api.get_opt(&reference.name)
                        .await
                        .map_err(|error| {
                            format!(
                                "reading substituteFrom Secret {namespace}/{} failed: {error}",
                                reference.name
                            )
                        })?
                        .map(|secret| {
                            secret
                                .data
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(key, value)| {
                                    (key, String::from_utf8_lossy(&value.0).into_owned())
                                })
                                .collect()
                        })
                }
            };
            match data {
                Some(data) => variables.extend(data),
                None if reference.optional => {}
                None => {
                    return Err(format!(
                        "substituteFrom {:?} {namespace}/{} not found; create it or mark the reference optional",
                        reference.kind, reference.name
                    ));
                }
            }
        }
        variables.extend(post_build.substitute.clone());
        validate_names(&variables).map_err(|error| error.to_string())?;
        substitute_all(objects, &variables, self.context.flags.strict_substitution)
            .map_err(|error| format!("post-build substitution failed: {error}"))
    }

    async fn track_drift(&self, cluster: &Cluster, changes: &[Change]) {
        if !self.context.flags.watch_drift || self.kustomization.spec.kube_config.is_some() {
            return;
        }
        let mut resources = Vec::new();
        for change in changes {
            let (group, version) =
                split_api_version(change.desired["apiVersion"].as_str().unwrap_or_default());
            let gvk = kube::api::GroupVersionKind::gvk(group, version, &change.id.kind);
            if let Ok(resolved) = cluster.resolve(&gvk).await
                && !resources
                    .iter()
                    .any(|known: &kube::api::ApiResource| known == &resolved.resource)
            {
                resources.push(resolved.resource);
            }
        }
        self.context.drift.track(changes, &resources);
    }

    async fn report_drift(&mut self, kustomization: &Kustomization) {
        let drifted: Vec<String> = self
            .changes
            .iter()
            .filter(|change| change.action == Action::Drifted)
            .map(|change| change.subject.clone())
            .collect();
        let previously = get(&self.status.conditions, status::DRIFTED)
            .map(|condition| condition.message.clone());
        status::set_drifted(&mut self.status, self.generation, &drifted);
        let now = get(&self.status.conditions, status::DRIFTED)
            .map(|condition| condition.message.clone());
        if !drifted.is_empty() && now != previously {
            let mut event = ObjectEvent::error(
                status::DRIFT_DETECTED,
                format!(
                    "Drift detected (detect-only, not corrected):\n{}",
                    drifted.join("\n")
                ),
            );
            if let Some(artifact) = &self.artifact {
                event = event.with_revision(artifact.revision.clone());
            }
            self.context
                .runtime
                .events
                .publish(kustomization, event)
                .await;
        }
    }

    async fn publish_change_set(&self, revision: &str) {
        let mut lines: Vec<String> = self
            .changes
            .iter()
            .filter(|change| matches!(change.action, Action::Created | Action::Configured))
            .map(|change| format!("{} {}", change.subject, change.action.as_str()))
            .collect();
        lines.extend(
            self.deleted
                .iter()
                .map(|deleted| format!("{deleted} deleted")),
        );
        if lines.is_empty() {
            return;
        }
        let event =
            ObjectEvent::info(reason::PROGRESSING, lines.join("\n")).with_revision(revision);
        self.context
            .runtime
            .events
            .publish(self.kustomization.as_ref(), event)
            .await;
    }

    /// Objects whose health gates readiness: all applied ones with `wait`, else `healthChecks`.
    fn health_targets(&self) -> Result<Vec<Value>, String> {
        let spec = &self.kustomization.spec;
        if spec.wait {
            return Ok(self
                .changes
                .iter()
                .filter(|change| change.action != Action::Skipped)
                .map(|change| change.desired.clone())
                .collect());
        }
        let own = self.kustomization.namespace().unwrap_or_default();
        spec.health_checks
            .iter()
            .enumerate()
            .map(|(index, check)| {
                let namespace = check.namespace.clone().unwrap_or_else(|| own.clone());
                let api_version = match &check.api_version {
                    Some(api_version) => api_version.clone(),
                    None => self
                        .changes
                        .iter()
                        .find(|change| change.id.kind == check.kind && change.id.name == check.name)
                        .and_then(|change| change.desired["apiVersion"].as_str().map(str::to_owned))
                        .ok_or_else(|| format!("spec.healthChecks[{index}].apiVersion is required for {} {} which is not in the build", check.kind, check.name))?,
                };
                Ok(json!({
                    "apiVersion": api_version,
                    "kind": check.kind,
                    "metadata": {"name": check.name, "namespace": namespace},
                }))
            })
            .collect()
    }

    async fn assess_health(
        &mut self,
        cluster: &Cluster,
        targets: &[Value],
        digest: &str,
        timeout: Duration,
        revision: String,
    ) -> Outcome {
        let key = self.key();
        let started = {
            let mut pending = self
                .context
                .pending_health
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = pending.entry(key.clone()).or_insert_with(|| PendingHealth {
                generation: self.generation,
                digest: digest.to_owned(),
                started: Instant::now(),
            });
            if entry.generation != self.generation || entry.digest != digest {
                *entry = PendingHealth {
                    generation: self.generation,
                    digest: digest.to_owned(),
                    started: Instant::now(),
                };
            }
            entry.started
        };
        let report = check_all(cluster, targets).await;
        let forget = || {
            self.context
                .pending_health
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        };
        if report.healthy() {
            forget();
            return Outcome::Applied(Applied {
                revision,
                health_checked: true,
                health_duration: started.elapsed(),
            });
        }
        if !report.failed.is_empty() {
            forget();
            let message = format!(
                "health check failed after {}: {}",
                format_duration(started.elapsed()),
                HealthReport::describe(&report.failed)
            );
            return self.health_failed(message);
        }
        if started.elapsed() >= timeout {
            forget();
            let message = format!(
                "health check failed after {}: timeout waiting for: [{}]",
                format_duration(started.elapsed()),
                HealthReport::describe(&report.pending)
            );
            return self.health_failed(message);
        }
        let message = format!(
            "Health check in progress (timeout {}): waiting for [{}]",
            format_duration(timeout),
            HealthReport::describe(&report.pending)
        );
        Outcome::WaitingForHealth {
            message,
            requeue: self.context.flags.health_check_interval,
        }
    }

    async fn write_status(&mut self) -> Result<(), sluice_runtime::status::StatusError> {
        sluice_runtime::apply_status(
            &self.api,
            &self.kustomization.name_any(),
            STATUS_MANAGER,
            &self.status,
        )
        .await?;
        Ok(())
    }

    fn history_metadata(&self) -> BTreeMap<String, String> {
        let mut metadata = BTreeMap::new();
        if let Some(artifact) = &self.artifact {
            metadata.insert(METADATA_REVISION.to_owned(), artifact.revision.clone());
            if let Some(origin) = artifact.metadata.get(OCI_REVISION_ANNOTATION) {
                metadata.insert(METADATA_ORIGIN_REVISION.to_owned(), origin.clone());
            }
        }
        metadata
    }

    async fn finish(mut self, outcome: Outcome) -> Result<Requeue, ReconcileFailure> {
        let generation = self.generation;
        let previous_ready = get(&self.status.conditions, READY).cloned();
        let previous_revision = self.status.last_applied_revision.clone();
        let token = self
            .kustomization
            .reconcile_request()
            .token
            .map(str::to_owned);
        let kustomization = self.kustomization.clone();
        let origin = self
            .artifact
            .as_ref()
            .and_then(|artifact| artifact.metadata.get(OCI_REVISION_ANNOTATION).cloned());
        let (requeue, event) = match outcome {
            Outcome::Applied(applied) => {
                status::mark_ready(&mut self.status, generation, &applied.revision);
                let healthy = format!(
                    "Health check passed in {}",
                    format_duration(applied.health_duration)
                );
                status::set_healthy(
                    &mut self.status,
                    generation,
                    applied.health_checked.then_some((
                        ConditionStatus::True,
                        reason::SUCCEEDED,
                        healthy.as_str(),
                    )),
                );
                self.status.last_applied_revision = Some(applied.revision.clone());
                self.status.last_applied_origin_revision = origin.clone();
                let metadata = self.history_metadata();
                if let Some(digest) = &self.digest {
                    record_history(
                        &mut self.status,
                        digest,
                        reason::RECONCILIATION_SUCCEEDED,
                        self.started.elapsed(),
                        metadata,
                    );
                }
                let interval = kustomization
                    .interval_duration()
                    .unwrap_or(Duration::from_secs(600));
                let transitioned = previous_ready
                    .as_ref()
                    .is_none_or(|ready| ready.status != "True")
                    || previous_revision.as_deref() != Some(applied.revision.as_str());
                let event = transitioned.then(|| {
                    let mut event = ObjectEvent::info(
                        reason::RECONCILIATION_SUCCEEDED,
                        format!(
                            "Reconciliation finished in {}, next run in {}",
                            format_duration(self.started.elapsed()),
                            format_duration(interval)
                        ),
                    )
                    .with_revision(applied.revision.clone())
                    .with_metadata("commit_status", "update");
                    if let Some(origin) = &origin {
                        event = event.with_metadata(METADATA_ORIGIN_REVISION, origin.clone());
                    }
                    event
                });
                (self.context.runtime.requeue_after_interval(interval), event)
            }
            Outcome::WaitingForHealth { message, requeue } => {
                status::mark_progressing(&mut self.status, generation, &message);
                status::set_healthy(
                    &mut self.status,
                    generation,
                    Some((
                        ConditionStatus::Unknown,
                        reason::PROGRESSING,
                        "Health check in progress",
                    )),
                );
                (Requeue::After(requeue), None)
            }
            Outcome::Failed {
                reason: why,
                message,
                requeue,
            } => {
                status::mark_failed(&mut self.status, generation, why, &message);
                let metadata = self.history_metadata();
                if let Some(digest) = &self.digest {
                    record_history(
                        &mut self.status,
                        digest,
                        why,
                        self.started.elapsed(),
                        metadata,
                    );
                }
                let mut event = ObjectEvent::error(why, message.clone());
                if let Some(artifact) = &self.artifact {
                    event = event.with_revision(artifact.revision.clone());
                }
                let repeated = previous_ready.as_ref().is_some_and(|ready| {
                    ready.reason == why && ready.message == status::truncate(&message)
                });
                let event = (why != reason::DEPENDENCY_NOT_READY && !repeated).then_some(event);
                (Requeue::After(requeue), event)
            }
            Outcome::Stalled {
                reason: why,
                message,
            } => {
                status::mark_stalled(&mut self.status, generation, why, &message);
                (Requeue::OnChange, Some(ObjectEvent::error(why, message)))
            }
        };
        status::finalize(&mut self.status, generation, token.as_deref());
        self.write_status().await?;
        let labels = ObjectLabels::of(kustomization.as_ref());
        for type_ in [READY, HEALTHY] {
            if let Some(condition) = get(&self.status.conditions, type_) {
                self.context.runtime.metrics.record_condition(
                    &labels,
                    type_,
                    ConditionStatus::parse(&condition.status),
                );
            }
        }
        if let Some(event) = event {
            self.context
                .runtime
                .events
                .publish(kustomization.as_ref(), event)
                .await;
        }
        Ok(requeue)
    }
}

async fn patch_finalizers(
    api: &Api<Kustomization>,
    kustomization: &Kustomization,
    finalizers: Vec<String>,
) -> Result<(), ReconcileFailure> {
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": kustomization.resource_version(),
        }
    });
    api.patch(
        &kustomization.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|source| ReconcileFailure::Finalizer {
        name: kustomization.name_any(),
        source,
    })?;
    Ok(())
}

/// Deletes the inventory as `deletionPolicy` says, then removes the finalizer.
async fn finalize(
    context: &Context,
    kustomization: &Kustomization,
    api: &Api<Kustomization>,
) -> Result<Requeue, ReconcileFailure> {
    if !kustomization.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::OnChange);
    }
    let key = format!(
        "{}/{}",
        kustomization.namespace().unwrap_or_default(),
        kustomization.name_any()
    );
    let policy = kustomization.effective_deletion_policy();
    let delete = match policy {
        DeletionPolicy::MirrorPrune => kustomization.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    };
    let entries = kustomization
        .status
        .as_ref()
        .and_then(|status| status.inventory.as_ref())
        .map(|inventory| inventory.entries.clone())
        .unwrap_or_default();
    if delete && !kustomization.spec.suspend && !entries.is_empty() {
        let owner = Owner {
            name: kustomization.name_any(),
            namespace: kustomization.namespace().unwrap_or_default(),
        };
        let wait = (policy == DeletionPolicy::WaitForTermination).then(|| {
            kustomization
                .effective_timeout()
                .unwrap_or(Duration::from_secs(60))
        });
        match context.tenancy.cluster_for(kustomization).await {
            Ok(cluster) => {
                let report = inventory::delete_entries(&cluster, &entries, &owner, wait).await;
                if !report.failed.is_empty() {
                    let message = report
                        .failed
                        .iter()
                        .map(|(entry, reason)| format!("{}: {reason}", entry.id))
                        .collect::<Vec<_>>()
                        .join("\n");
                    context
                        .runtime
                        .events
                        .publish(
                            kustomization,
                            ObjectEvent::error(
                                reason::PRUNE_FAILED,
                                format!("deleting the inventory failed; retrying: {message}"),
                            ),
                        )
                        .await;
                    return Ok(Requeue::After(retry_interval(kustomization)));
                }
                if !report.deleted.is_empty() {
                    context
                        .runtime
                        .events
                        .publish(
                            kustomization,
                            ObjectEvent::info(
                                PRUNED,
                                report
                                    .deleted
                                    .iter()
                                    .map(|d| format!("{d} deleted"))
                                    .collect::<Vec<_>>()
                                    .join("\n"),
                            ),
                        )
                        .await;
                }
            }
            Err(error) => {
                context
                    .runtime
                    .events
                    .publish(
                        kustomization,
                        ObjectEvent::error(
                            reason::PRUNE_FAILED,
                            format!("skipping deletion of the inventory: {error}"),
                        ),
                    )
                    .await;
            }
        }
    }
    context
        .pending_health
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&key);
    let remaining: Vec<String> = kustomization
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(api, kustomization, remaining).await?;
    let labels = ObjectLabels::of(kustomization);
    for type_ in [READY, HEALTHY] {
        context
            .runtime
            .metrics
            .record_condition_deleted(&labels, type_);
    }
    Ok(Requeue::OnChange)
}
