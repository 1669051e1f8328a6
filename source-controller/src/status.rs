//! How a reconcile outcome becomes Flux's status conditions: the `Ready` summary over the
//! source conditions, with Flux's priorities and negative polarity.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sluice_api::meta::condition_type::{
    ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, INCLUDE_UNAVAILABLE, READY, RECONCILING,
    SOURCE_NEGATIVE_POLARITY, SOURCE_VERIFIED, STALLED, STORAGE_OPERATION_FAILED,
};
use sluice_api::meta::reason;
use sluice_runtime::conditions::{self, ConditionStatus, SummaryPolicy};

/// Conditions that feed `Ready`, highest priority first (Flux's GitRepository/OCIRepository order).
pub const READY_INPUTS: &[&str] = &[
    STORAGE_OPERATION_FAILED,
    FETCH_FAILED,
    INCLUDE_UNAVAILABLE,
    ARTIFACT_OUTDATED,
    ARTIFACT_IN_STORAGE,
    SOURCE_VERIFIED,
    STALLED,
    RECONCILING,
];

/// The `Ready` summary policy of source kinds.
pub const READY_POLICY: SummaryPolicy<'static> = SummaryPolicy {
    target: READY,
    in_scope: READY_INPUTS,
    negative_polarity: SOURCE_NEGATIVE_POLARITY,
};

/// The `Ready` summary after a failure: `Reconciling` is left out so that a failing
/// positive-polarity condition (`SourceVerified=False`) gives `Ready` its reason, as in Flux.
const FAILURE_POLICY: SummaryPolicy<'static> = SummaryPolicy {
    target: READY,
    in_scope: &[
        STORAGE_OPERATION_FAILED,
        FETCH_FAILED,
        INCLUDE_UNAVAILABLE,
        ARTIFACT_OUTDATED,
        ARTIFACT_IN_STORAGE,
        SOURCE_VERIFIED,
    ],
    negative_polarity: SOURCE_NEGATIVE_POLARITY,
};

/// How a reconcile ended, for the final status write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The artifact is current (new, or unchanged upstream).
    Succeeded,
    /// The spec cannot work as written; no retry until it changes.
    Stalled { reason: String, message: String },
    /// A dependency is missing; retried after `--requeue-dependency`.
    Waiting,
    /// A retryable failure, already recorded in a negative condition.
    Failed,
}

/// Marks the start of a reconcile: `Reconciling=True` and `Ready=Unknown` unless already failing.
pub fn mark_progressing(list: &mut Vec<Condition>, message: &str, generation: Option<i64>) {
    conditions::mark_reconciling(list, reason::PROGRESSING, message, generation);
    if !conditions::is_false(list, READY) {
        conditions::set(
            list,
            READY,
            ConditionStatus::Unknown,
            reason::PROGRESSING,
            message,
            generation,
        );
    }
}

/// Applies Flux's end-of-reconcile rules and recomputes `Ready`; returns whether
/// `observedGeneration` should be advanced to the current generation.
pub fn finish(list: &mut Vec<Condition>, outcome: &Outcome, generation: Option<i64>) -> bool {
    let advance = match outcome {
        Outcome::Succeeded => {
            conditions::remove(list, RECONCILING);
            conditions::remove(list, STALLED);
            true
        }
        Outcome::Stalled { reason, message } => {
            conditions::mark_stalled(list, reason, message.clone(), generation);
            true
        }
        Outcome::Waiting | Outcome::Failed => {
            conditions::remove(list, STALLED);
            if let Some(reconciling) = conditions::get(list, RECONCILING).cloned() {
                conditions::set(
                    list,
                    RECONCILING,
                    ConditionStatus::True,
                    reason::PROGRESSING_WITH_RETRY,
                    reconciling.message,
                    generation,
                );
            }
            false
        }
    };
    let failure_summary = matches!(outcome, Outcome::Waiting | Outcome::Failed)
        .then(|| conditions::summarize(list, &FAILURE_POLICY))
        .flatten()
        .filter(|summary| summary.status == ConditionStatus::False);
    match failure_summary {
        Some(summary) => conditions::set(
            list,
            READY,
            summary.status,
            &summary.reason,
            summary.message,
            generation,
        ),
        None => conditions::set_summary(list, &READY_POLICY, generation),
    }
    advance
}

/// `Type=True` with a reason and message.
pub fn mark_true(
    list: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    conditions::set(
        list,
        type_,
        ConditionStatus::True,
        reason,
        message,
        generation,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_leaves_ready_true_from_artifact_in_storage() {
        let mut list = Vec::new();
        mark_progressing(&mut list, "reconciliation in progress", Some(2));
        mark_true(
            &mut list,
            ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            "stored artifact for revision 'main@sha1:abc'",
            Some(2),
        );
        assert!(finish(&mut list, &Outcome::Succeeded, Some(2)));
        assert!(conditions::get(&list, RECONCILING).is_none());
        let ready = conditions::get(&list, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Succeeded")
        );
        assert_eq!(
            ready.message,
            "stored artifact for revision 'main@sha1:abc'"
        );
    }

    #[test]
    fn fetch_failure_wins_over_stored_artifact() {
        let mut list = Vec::new();
        mark_progressing(&mut list, "reconciliation in progress", Some(1));
        mark_true(
            &mut list,
            ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            "stored",
            Some(1),
        );
        mark_true(
            &mut list,
            FETCH_FAILED,
            reason::GIT_OPERATION_FAILED,
            "unreachable",
            Some(1),
        );
        assert!(!finish(&mut list, &Outcome::Failed, Some(1)));
        let ready = conditions::get(&list, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "GitOperationFailed")
        );
        let reconciling = conditions::get(&list, RECONCILING).unwrap();
        assert_eq!(reconciling.reason, "ProgressingWithRetry");
        assert!(conditions::is_true(&list, ARTIFACT_IN_STORAGE));
    }

    #[test]
    fn failed_verification_gives_ready_its_reason() {
        let mut list = Vec::new();
        mark_progressing(&mut list, "reconciliation in progress", Some(1));
        mark_true(
            &mut list,
            ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            "stored",
            Some(1),
        );
        conditions::set(
            &mut list,
            SOURCE_VERIFIED,
            ConditionStatus::False,
            reason::INVALID_COMMIT_SIGNATURE,
            "unsigned",
            Some(1),
        );
        assert!(!finish(&mut list, &Outcome::Failed, Some(1)));
        let ready = conditions::get(&list, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidCommitSignature")
        );
    }

    #[test]
    fn stalled_sets_ready_false_with_the_stall_reason() {
        let mut list = Vec::new();
        mark_progressing(&mut list, "reconciliation in progress", Some(1));
        let outcome = Outcome::Stalled {
            reason: "URLInvalid".into(),
            message: "bad url".into(),
        };
        assert!(finish(&mut list, &outcome, Some(1)));
        assert!(conditions::get(&list, RECONCILING).is_none());
        let ready = conditions::get(&list, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "URLInvalid")
        );
    }
}
