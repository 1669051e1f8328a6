//! The Kustomization's own record of a reconcile, the part the shared lifecycle does not own:
//! revisions, `Healthy`, inventory, `history`, the retry of a failure and the success notice.
//! Pure: [`record`] maps what the steps produced and how they ended to status and an event.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use sluice_api::FluxObject;
use sluice_api::duration::format_duration;
use sluice_api::kustomize::{Kustomization, KustomizationStatus, ResourceInventory};
use sluice_api::meta::condition_type::{HEALTHY, READY};
use sluice_api::meta::{Artifact, MAX_HISTORY_SIZE, Snapshot, reason};
use sluice_runtime::conditions::{self, is_true};
use sluice_runtime::events::METADATA_REVISION;
use sluice_runtime::{ConditionStatus, ObjectEvent, Outcome, ReadyRule};

use super::health_step::HealthVerdict;
use crate::apply::{Action, ApplyReport};
use crate::inventory::{self, PruneReport};

/// Event and history metadata key of the origin revision.
const METADATA_ORIGIN_REVISION: &str = "originRevision";
/// Event metadata key that makes notification-controller update the commit status.
const METADATA_COMMIT_STATUS: &str = "commit_status";
/// Artifact metadata holding the upstream revision of OCI artifacts.
const OCI_REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";
/// Retry interval when `spec.retryInterval` and `spec.interval` cannot be parsed.
const FALLBACK_RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// Interval named in the success notice when `spec.interval` cannot be parsed.
const FALLBACK_INTERVAL: Duration = Duration::from_secs(600);

/// `Ready` follows the outcome; on success it names the applied revision, as in Flux.
pub const READY_RULE: ReadyRule<Kustomization> = ReadyRule::Outcome {
    reason: reason::RECONCILIATION_SUCCEEDED,
    message: applied_revision,
};

fn applied_revision(ks: &Kustomization) -> String {
    let revision = ks
        .status
        .as_ref()
        .and_then(|status| status.last_applied_revision.as_deref());
    format!("Applied revision: {}", revision.unwrap_or_default())
}

/// Failures are retried after `spec.retryInterval` (default `spec.interval`).
pub fn retry_interval(ks: &Kustomization) -> Duration {
    ks.effective_retry_interval()
        .unwrap_or(FALLBACK_RETRY_INTERVAL)
}

/// What the steps of one reconcile produced; `None` (or `false`) where a step did not run.
#[derive(Debug, Default)]
pub struct Attempt {
    /// The source artifact.
    pub artifact: Option<Artifact>,
    /// Whether the artifact was fetched, making its revision the last attempted one.
    pub fetched: bool,
    /// Digest of the build output.
    pub digest: Option<String>,
    /// Values substituted from Secrets, redacted from apply errors.
    pub secret_values: Vec<String>,
    /// The inventory written ahead of the apply (the recorded one plus the new objects).
    pub inventory_ahead: Option<ResourceInventory>,
    /// What the apply did.
    pub change_set: Option<ApplyReport>,
    /// What the prune deleted or failed to delete.
    pub pruned: Option<PruneReport>,
    /// The health verdict.
    pub health: Option<HealthVerdict>,
    /// How long the reconcile took.
    pub elapsed: Duration,
}

impl Attempt {
    fn revision(&self) -> Option<&str> {
        self.artifact
            .as_ref()
            .map(|artifact| artifact.revision.as_str())
    }

    fn origin_revision(&self) -> Option<&String> {
        self.artifact
            .as_ref()
            .and_then(|artifact| artifact.metadata.get(OCI_REVISION_ANNOTATION))
    }

    /// Whether the apply created or changed an object.
    fn changed_objects(&self) -> bool {
        self.change_set.as_ref().is_some_and(|change_set| {
            change_set
                .changes
                .iter()
                .any(|change| matches!(change.action, Action::Created | Action::Configured))
        })
    }

    /// The revision and origin revision, as history and events carry them.
    fn metadata(&self) -> BTreeMap<String, String> {
        let mut metadata = BTreeMap::new();
        if let Some(revision) = self.revision() {
            metadata.insert(METADATA_REVISION.to_owned(), revision.to_owned());
        }
        if let Some(origin) = self.origin_revision() {
            metadata.insert(METADATA_ORIGIN_REVISION.to_owned(), origin.clone());
        }
        metadata
    }
}

/// The outcome for the lifecycle, and the notices to publish, in order, once the status is
/// written.
#[derive(Debug, PartialEq)]
pub struct Recorded {
    pub outcome: Outcome,
    pub notices: Vec<ObjectEvent>,
}

/// Records `attempt` and `outcome` in the Kustomization's status at `now`: last attempted and
/// applied revisions, inventory, `Healthy` and history. A retry waits `spec.retryInterval` and
/// carries the revision; a success is announced on becoming Ready or at a new revision.
pub fn record(ks: &mut Kustomization, attempt: &Attempt, outcome: Outcome, now: Time) -> Recorded {
    let generation = ks.metadata.generation;
    let was_ready = is_true(ks.conditions(), READY);
    let was_healthy = is_true(ks.conditions(), HEALTHY);
    let retry = retry_interval(ks);
    let interval = ks.interval_duration().unwrap_or(FALLBACK_INTERVAL);
    let status = ks.status.get_or_insert_with(Default::default);
    if attempt.fetched {
        status.last_attempted_revision = attempt.revision().map(str::to_owned);
    }
    if let Some(inventory) = recorded_inventory(status.inventory.as_ref(), attempt) {
        status.inventory = Some(inventory);
    }
    if let Some(health) = &attempt.health {
        set_healthy(&mut status.conditions, health, generation);
    }
    let mut notices = Vec::new();
    let outcome = match outcome {
        Outcome::Success => {
            let revision = attempt.revision().map(str::to_owned);
            let new_revision = status.last_applied_revision != revision;
            status.last_applied_revision = revision;
            status.last_applied_origin_revision = attempt.origin_revision().cloned();
            record_history(status, attempt, reason::RECONCILIATION_SUCCEEDED, now);
            if let Some(HealthVerdict::Passed { after }) = &attempt.health
                && (!was_healthy || (new_revision && attempt.changed_objects()))
            {
                notices.push(health_notice(attempt, *after));
            }
            if !was_ready || new_revision {
                notices.push(success_notice(attempt, interval));
            }
            Outcome::Success
        }
        Outcome::Retry(failure) => {
            record_history(status, attempt, &failure.reason, now);
            let failure = failure.retry_after(retry);
            Outcome::Retry(match attempt.revision() {
                Some(revision) => failure.with_revision(revision),
                None => failure,
            })
        }
        other => other,
    };
    Recorded { outcome, notices }
}

/// The inventory after this attempt: what was applied, plus what could not be pruned; after a
/// failed apply, the previous inventory plus what was applied; after an apply cut short with no
/// report, the inventory written ahead of it. `None` when nothing was applied.
fn recorded_inventory(
    previous: Option<&ResourceInventory>,
    attempt: &Attempt,
) -> Option<ResourceInventory> {
    let Some(change_set) = attempt.change_set.as_ref() else {
        return attempt.inventory_ahead.clone();
    };
    let applied = inventory::from_changes(&change_set.changes);
    if !change_set.errors.is_empty() {
        return Some(inventory::merge(
            &previous.cloned().unwrap_or_default(),
            &applied.entries,
        ));
    }
    Some(match &attempt.pruned {
        Some(pruned) => inventory::merge(&applied, &pruned.survivors()),
        None => applied,
    })
}

/// `Healthy` from the verdict; removed when nothing is health-checked.
fn set_healthy(list: &mut Vec<Condition>, health: &HealthVerdict, generation: Option<i64>) {
    let (status, why, message) = match health {
        HealthVerdict::NotChecked => {
            conditions::remove(list, HEALTHY);
            return;
        }
        HealthVerdict::Passed { after } => (
            ConditionStatus::True,
            reason::SUCCEEDED,
            format!("Health check passed in {}", format_duration(*after)),
        ),
        HealthVerdict::Pending { .. } => (
            ConditionStatus::Unknown,
            reason::PROGRESSING,
            "Health check in progress".to_owned(),
        ),
        HealthVerdict::Failed { message } => (
            ConditionStatus::False,
            reason::HEALTH_CHECK_FAILED,
            message.clone(),
        ),
    };
    conditions::set(list, HEALTHY, status, why, message, generation);
}

/// "Health check passed in X", as Flux announces health that was not passing or follows changes
/// of a new revision.
fn health_notice(attempt: &Attempt, after: Duration) -> ObjectEvent {
    let mut event = ObjectEvent::info(
        reason::PROGRESSING,
        format!("Health check passed in {}", format_duration(after)),
    );
    event.metadata.extend(attempt.metadata());
    event
}

/// "Reconciliation finished in X, next run in Y", marked to update the commit status.
fn success_notice(attempt: &Attempt, interval: Duration) -> ObjectEvent {
    let mut event = ObjectEvent::info(
        reason::RECONCILIATION_SUCCEEDED,
        format!(
            "Reconciliation finished in {}, next run in {}",
            format_duration(attempt.elapsed),
            format_duration(interval)
        ),
    )
    .with_metadata(METADATA_COMMIT_STATUS, "update");
    event.metadata.extend(attempt.metadata());
    event
}

/// Adds the attempt to `history` (when it got as far as a build), merging with the entry of
/// the same digest and result; the newest comes first, at most [`MAX_HISTORY_SIZE`] are kept.
fn record_history(status: &mut KustomizationStatus, attempt: &Attempt, result: &str, now: Time) {
    let Some(digest) = attempt.digest.as_deref() else {
        return;
    };
    let duration = format_duration(attempt.elapsed);
    let existing = status
        .history
        .iter()
        .position(|entry| entry.digest == digest && entry.last_reconciled_status == result);
    let snapshot = match existing {
        Some(index) => {
            let mut entry = status.history.remove(index);
            entry.last_reconciled = now;
            entry.last_reconciled_duration = duration;
            entry.total_reconciliations += 1;
            entry.metadata = attempt.metadata();
            entry
        }
        None => Snapshot {
            digest: digest.to_owned(),
            first_reconciled: now.clone(),
            last_reconciled: now,
            last_reconciled_duration: duration,
            last_reconciled_status: result.to_owned(),
            total_reconciliations: 1,
            metadata: attempt.metadata(),
        },
    };
    status.history.insert(0, snapshot);
    status.history.truncate(MAX_HISTORY_SIZE);
}

#[cfg(test)]
mod tests;
