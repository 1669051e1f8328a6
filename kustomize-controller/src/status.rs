//! Kustomization status in Flux's shape: conditions, revisions, inventory and history.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use sluice_api::duration::format_duration;
use sluice_api::kustomize::KustomizationStatus;
use sluice_api::meta::condition_type::{HEALTHY, READY, RECONCILING, STALLED};
use sluice_api::meta::{MAX_HISTORY_SIZE, Snapshot, reason};
use sluice_runtime::ConditionStatus;
use sluice_runtime::conditions::{self, is_false, is_true};

/// Condition type set while a detect-only Kustomization has drifted objects.
pub const DRIFTED: &str = "Drifted";
/// Reason of the [`DRIFTED`] condition.
pub const DRIFT_DETECTED: &str = "DriftDetected";

pub use sluice_runtime::conditions::truncate;

/// Marks a reconcile in progress: `Reconciling=True` and `Ready=Unknown`.
pub fn mark_progressing(status: &mut KustomizationStatus, generation: Option<i64>, message: &str) {
    conditions::mark_reconciling(
        &mut status.conditions,
        reason::PROGRESSING,
        truncate(message),
        generation,
    );
    conditions::set(
        &mut status.conditions,
        READY,
        ConditionStatus::Unknown,
        reason::PROGRESSING,
        "Reconciliation in progress",
        generation,
    );
}

/// Marks a failure to retry: `Ready=False` with `reason`; `Reconciling` (if any) becomes `ProgressingWithRetry`.
pub fn mark_failed(
    status: &mut KustomizationStatus,
    generation: Option<i64>,
    failure_reason: &str,
    message: &str,
) {
    conditions::remove(&mut status.conditions, STALLED);
    conditions::mark_not_ready(
        &mut status.conditions,
        failure_reason,
        truncate(message),
        generation,
    );
    if let Some(reconciling) = conditions::get(&status.conditions, RECONCILING).cloned() {
        conditions::set(
            &mut status.conditions,
            RECONCILING,
            ConditionStatus::True,
            reason::PROGRESSING_WITH_RETRY,
            reconciling.message,
            generation,
        );
    }
}

/// Marks a failure that needs a spec change: `Stalled=True` and `Ready=False`.
pub fn mark_stalled(
    status: &mut KustomizationStatus,
    generation: Option<i64>,
    failure_reason: &str,
    message: &str,
) {
    let message = truncate(message);
    conditions::mark_stalled(
        &mut status.conditions,
        failure_reason,
        message.clone(),
        generation,
    );
    conditions::mark_not_ready(&mut status.conditions, failure_reason, message, generation);
}

/// Marks success: `Ready=True ReconciliationSucceeded`, without Reconciling or Stalled.
pub fn mark_ready(status: &mut KustomizationStatus, generation: Option<i64>, revision: &str) {
    conditions::mark_ready(
        &mut status.conditions,
        reason::RECONCILIATION_SUCCEEDED,
        format!("Applied revision: {revision}"),
        generation,
    );
}

/// Sets `Healthy`, or removes it when nothing is health-checked.
pub fn set_healthy(
    status: &mut KustomizationStatus,
    generation: Option<i64>,
    healthy: Option<(ConditionStatus, &str, &str)>,
) {
    match healthy {
        Some((value, why, message)) => conditions::set(
            &mut status.conditions,
            HEALTHY,
            value,
            why,
            truncate(message),
            generation,
        ),
        None => {
            conditions::remove(&mut status.conditions, HEALTHY);
        }
    }
}

/// Sets or clears the detect-only drift report.
pub fn set_drifted(status: &mut KustomizationStatus, generation: Option<i64>, drifted: &[String]) {
    if drifted.is_empty() {
        conditions::remove(&mut status.conditions, DRIFTED);
    } else {
        conditions::set(
            &mut status.conditions,
            DRIFTED,
            ConditionStatus::True,
            DRIFT_DETECTED,
            truncate(&format!(
                "Drift detected (not corrected, detect-only mode): {}",
                drifted.join(", ")
            )),
            generation,
        );
    }
}

/// What Flux's `finalizeStatus` does: record the handled request token, and on success
/// drop `Reconciling` and record the observed generation.
pub fn finalize(
    status: &mut KustomizationStatus,
    generation: Option<i64>,
    request_token: Option<&str>,
) {
    if let Some(token) = request_token {
        status.last_handled_reconcile_at = Some(token.to_owned());
    }
    if is_true(&status.conditions, READY) {
        conditions::remove(&mut status.conditions, RECONCILING);
        status.observed_generation = generation;
    }
    if is_false(&status.conditions, READY)
        && let Some(reconciling) = conditions::get(&status.conditions, RECONCILING).cloned()
        && reconciling.reason != reason::PROGRESSING_WITH_RETRY
    {
        conditions::set(
            &mut status.conditions,
            RECONCILING,
            ConditionStatus::True,
            reason::PROGRESSING_WITH_RETRY,
            reconciling.message,
            generation,
        );
    }
}

/// Adds an outcome to `history`, merging with an entry of the same digest and status.
pub fn record_history(
    status: &mut KustomizationStatus,
    digest: &str,
    outcome: &str,
    duration: Duration,
    metadata: BTreeMap<String, String>,
) {
    let now = Time(Timestamp::now());
    let duration = format_duration(duration);
    let existing = status
        .history
        .iter()
        .position(|entry| entry.digest == digest && entry.last_reconciled_status == outcome);
    let snapshot = match existing {
        Some(index) => {
            let mut entry = status.history.remove(index);
            entry.last_reconciled = now;
            entry.last_reconciled_duration = duration;
            entry.total_reconciliations += 1;
            entry.metadata = metadata;
            entry
        }
        None => Snapshot {
            digest: digest.to_owned(),
            first_reconciled: now.clone(),
            last_reconciled: now,
            last_reconciled_duration: duration,
            last_reconciled_status: outcome.to_owned(),
            total_reconciliations: 1,
            metadata,
        },
    };
    status.history.insert(0, snapshot);
    status.history.truncate(MAX_HISTORY_SIZE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_then_success_follows_flux() {
        let mut status = KustomizationStatus::default();
        mark_progressing(&mut status, Some(2), "Fetching manifests");
        mark_failed(&mut status, Some(2), reason::BUILD_FAILED, "bad yaml");
        finalize(&mut status, Some(2), Some("t1"));
        let reconciling = conditions::get(&status.conditions, RECONCILING).unwrap();
        assert_eq!(reconciling.reason, reason::PROGRESSING_WITH_RETRY);
        assert_eq!(status.observed_generation, None);
        assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("t1"));

        mark_ready(&mut status, Some(2), "main@sha1:abc");
        finalize(&mut status, Some(2), None);
        assert!(conditions::get(&status.conditions, RECONCILING).is_none());
        assert_eq!(status.observed_generation, Some(2));
        let ready = conditions::get(&status.conditions, READY).unwrap();
        assert_eq!(ready.message, "Applied revision: main@sha1:abc");
    }

    #[test]
    fn stalled_clears_reconciling() {
        let mut status = KustomizationStatus::default();
        mark_progressing(&mut status, Some(1), "x");
        mark_stalled(
            &mut status,
            Some(1),
            reason::ACCESS_DENIED,
            "cross-namespace",
        );
        assert!(conditions::get(&status.conditions, RECONCILING).is_none());
        assert!(is_true(&status.conditions, STALLED));
        assert!(is_false(&status.conditions, READY));
    }

    #[test]
    fn history_dedupes_and_caps() {
        let mut status = KustomizationStatus::default();
        for index in 0..7 {
            record_history(
                &mut status,
                &format!("sha256:{index}"),
                "ReconciliationSucceeded",
                Duration::from_millis(10),
                BTreeMap::new(),
            );
        }
        assert_eq!(status.history.len(), MAX_HISTORY_SIZE);
        record_history(
            &mut status,
            "sha256:6",
            "ReconciliationSucceeded",
            Duration::ZERO,
            BTreeMap::new(),
        );
        assert_eq!(status.history.len(), MAX_HISTORY_SIZE);
        assert_eq!(status.history[0].total_reconciliations, 2);
    }
}
