//! The Kustomization on the shared lifecycle: the step list, and its cleanup on deletion.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use sluice_api::FluxObject;
use sluice_api::duration::format_duration;
use sluice_api::kustomize::{Kustomization, ResourceInventory};
use sluice_api::meta::condition_type::{HEALTHY, READY};
use sluice_runtime::conditions::is_true;
use sluice_runtime::{Failure, Lifecycle, Outcome, Policy, Reconciler, RuntimeContext};

use super::health_step::{AppliedSet, HealthVerdict};
use super::record::{Attempt, READY_RULE, record};
use super::{
    Context, STATUS_MANAGER, apply_step, build_step, finalize, health_step, prune_step,
    source_step, validate_step,
};
use crate::apply::ApplyReport;
use crate::cluster::Cluster;

/// How long fetch, build and apply may run before `Reconciling` progress is written; a quicker
/// reconcile writes its status once, at the end.
const ANNOUNCE_AFTER: Duration = Duration::from_secs(3);

/// Reconciles Kustomizations: [`Self::steps`] inside the shared lifecycle.
pub struct KustomizationReconciler {
    context: Arc<Context>,
    policy: Policy<Kustomization>,
}

impl KustomizationReconciler {
    /// The reconciler, writing status as `gotk-kustomize-controller`.
    pub fn new(context: Arc<Context>) -> Self {
        let policy = Policy {
            status_manager: STATUS_MANAGER.to_owned(),
            ready: READY_RULE,
            metric_conditions: &[HEALTHY],
            announce_new_generation: false,
        };
        Self { context, policy }
    }

    /// Source → dependencies → fetch → build → inventory ahead → apply → prune → health; each
    /// step returns its product (kept in `attempt` for the record) or ends the reconcile with an
    /// outcome. `Reconciling` progress is written only when fetch, build and apply take a while
    /// (with the inventory written `ahead`); a re-check of pending health re-applies nothing (see
    /// [`health_step::pending_apply`]).
    async fn steps(
        &self,
        ks: &mut Kustomization,
        lifecycle: &Lifecycle<'_, Kustomization>,
        attempt: &mut Attempt,
        ahead: &OnceLock<ResourceInventory>,
    ) -> Result<HealthVerdict, Outcome> {
        let context = self.context.as_ref();
        let timeout = validate_step::validate(ks, &context.flags)?;
        let artifact = attempt.artifact.insert(
            lifecycle
                .step("source", source_step::artifact(context, ks))
                .await?,
        );
        let revision = artifact.revision.clone();
        source_step::dependencies(context, ks, &revision).await?;
        let (cluster, applying) = {
            let work = async {
                let root = lifecycle
                    .step("fetch", source_step::fetch(context, artifact))
                    .await?;
                attempt.fetched = true;
                let building =
                    build_step::build_manifests(context, ks, root.path().to_path_buf(), &revision);
                let built = lifecycle.step("build", building).await?;
                attempt.digest = Some(built.digest);
                attempt.secret_values = built.secret_values;
                let cluster = apply_step::target_cluster(context, ks).await?;
                let digest = attempt.digest.as_deref().unwrap_or_default();
                if let Some(pending) = health_step::pending_apply(context, ks, digest) {
                    return Ok((cluster, Applying::Pending(pending)));
                }
                if let Some(inventory) = apply_step::inventory_ahead(ks, &built.objects) {
                    let inventory = ahead.get_or_init(|| inventory);
                    let recording = apply_step::record_inventory_ahead(lifecycle, ks, inventory);
                    lifecycle.step("inventory", recording).await?;
                }
                let applying =
                    apply_step::apply(context, ks, &cluster, built.objects, &revision, timeout);
                let change_set = lifecycle.step("apply", applying).await?;
                Ok::<_, Outcome>((cluster, Applying::Fresh(change_set)))
            };
            tokio::pin!(work);
            match tokio::time::timeout(ANNOUNCE_AFTER, &mut work).await {
                Ok(done) => done?,
                Err(_) => {
                    announce(lifecycle, ks, ahead.get(), &revision, timeout).await;
                    work.await?
                }
            }
        };
        match applying {
            Applying::Pending(pending) => {
                attempt.change_set = Some(pending.change_set);
                attempt.pruned = Some(pending.pruned);
            }
            Applying::Fresh(change_set) => {
                self.conclude_apply(ks, lifecycle, attempt, &cluster, change_set, &revision)
                    .await?;
            }
        }
        let (Some(change_set), Some(pruned)) = (&attempt.change_set, &attempt.pruned) else {
            return Ok(HealthVerdict::NotChecked);
        };
        let digest = attempt.digest.as_deref().unwrap_or_default();
        let assessing =
            health_step::assess(context, ks, &cluster, change_set, pruned, digest, timeout);
        lifecycle.step("health", assessing).await
    }

    /// After a fresh apply: fail on apply errors, report drift, prune, fail on prune errors, and
    /// publish the change set.
    async fn conclude_apply(
        &self,
        ks: &mut Kustomization,
        lifecycle: &Lifecycle<'_, Kustomization>,
        attempt: &mut Attempt,
        cluster: &Cluster,
        change_set: ApplyReport,
        revision: &str,
    ) -> Result<(), Outcome> {
        let context = self.context.as_ref();
        let change_set = attempt.change_set.insert(change_set);
        apply_step::check(change_set, &attempt.secret_values)?;
        apply_step::report_drift(context, ks, &change_set.changes, revision).await;
        let pruned = attempt.pruned.insert(
            lifecycle
                .step("prune", prune_step::prune(ks, cluster, change_set))
                .await,
        );
        prune_step::check(pruned)?;
        apply_step::publish_change_set(context, ks, change_set, pruned, revision).await;
        Ok(())
    }
}

/// What the apply stage produced: a fresh apply, or the apply of a pending health wait.
enum Applying {
    Fresh(ApplyReport),
    Pending(AppliedSet),
}

/// Marks the Kustomization `Reconciling` while a revision or generation is new to it (on a
/// copy holding the inventory written ahead, if any: the conclusion is written from the
/// reconciled object).
async fn announce(
    lifecycle: &Lifecycle<'_, Kustomization>,
    ks: &Kustomization,
    ahead: Option<&ResourceInventory>,
    revision: &str,
    timeout: Duration,
) {
    let applied = ks
        .status
        .as_ref()
        .and_then(|status| status.last_applied_revision.as_deref());
    let up_to_date = is_true(ks.conditions(), READY)
        && applied == Some(revision)
        && ks.observed_generation() == ks.metadata.generation;
    if up_to_date {
        return;
    }
    let message = format!(
        "Fetching manifests for revision {revision} with a timeout of {}",
        format_duration(timeout)
    );
    let mut progress = ks.clone();
    if let Some(inventory) = ahead {
        progress
            .status
            .get_or_insert_with(Default::default)
            .inventory = Some(inventory.clone());
    }
    if let Err(error) = lifecycle.progress(&mut progress, &message).await {
        tracing::warn!(%error, "writing progress status failed");
    }
}

impl Reconciler<Kustomization> for KustomizationReconciler {
    fn runtime(&self) -> &RuntimeContext {
        &self.context.runtime
    }

    fn policy(&self) -> &Policy<Kustomization> {
        &self.policy
    }

    async fn reconcile(
        &self,
        ks: &mut Kustomization,
        lifecycle: &Lifecycle<'_, Kustomization>,
    ) -> Outcome {
        let started = Instant::now();
        let mut attempt = Attempt::default();
        let ahead = OnceLock::new();
        let outcome = match self.steps(ks, lifecycle, &mut attempt, &ahead).await {
            Ok(verdict) => {
                let outcome = verdict.outcome(self.context.flags.health_check_interval);
                attempt.health = Some(verdict);
                outcome
            }
            Err(outcome) => outcome,
        };
        attempt.inventory_ahead = ahead.into_inner();
        attempt.elapsed = started.elapsed();
        let recorded = record(ks, &attempt, outcome, Time(Timestamp::now()));
        tracing::debug!(
            resource_version = ?ks.metadata.resource_version,
            source_revision = ?attempt.artifact.as_ref().map(|a| a.revision.as_str()),
            last_applied = ?ks.status.as_ref().and_then(|s| s.last_applied_revision.as_deref()),
            outcome = ?recorded.outcome,
            "reconcile recorded"
        );
        for notice in recorded.notices {
            lifecycle.publish_after_status(notice);
        }
        recorded.outcome
    }

    async fn cleanup(&self, ks: &Kustomization) -> Result<(), Failure> {
        finalize::cleanup(&self.context, ks).await
    }
}
