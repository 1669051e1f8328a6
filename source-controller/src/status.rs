//! How source status reads in Flux's terms: the conditions that summarise into `Ready`, with
//! Flux's priorities, for the shared lifecycle's summary rule.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sluice_api::meta::condition_type::{
    ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, INCLUDE_UNAVAILABLE, RECONCILING,
    SOURCE_VERIFIED, STALLED, STORAGE_OPERATION_FAILED,
};
use sluice_api::source::GitRepository;
use sluice_runtime::ReadyRule;
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_runtime::lifecycle;

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

/// The `Ready` inputs after a failure: `Reconciling` is left out so that a failing
/// positive-polarity condition (`SourceVerified=False`) gives `Ready` its reason, as in Flux.
pub const READY_AFTER_FAILURE: &[&str] = &[
    STORAGE_OPERATION_FAILED,
    FETCH_FAILED,
    INCLUDE_UNAVAILABLE,
    ARTIFACT_OUTDATED,
    ARTIFACT_IN_STORAGE,
    SOURCE_VERIFIED,
];

/// The summary rule of every source kind (the rule does not depend on the kind).
const RULE: ReadyRule<GitRepository> = ReadyRule::Summary {
    inputs: READY_INPUTS,
    after_failure: READY_AFTER_FAILURE,
};

/// Marks a step in progress: `Reconciling=True`, and `Ready=Unknown` unless already failing.
pub fn mark_progressing(list: &mut Vec<Condition>, message: &str, generation: Option<i64>) {
    lifecycle::mark_progressing(list, &RULE, message, generation);
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
    use sluice_api::FluxObject;
    use sluice_api::meta::condition_type::READY;
    use sluice_api::meta::reason;
    use sluice_runtime::lifecycle::conclude;
    use sluice_runtime::{Failure, Outcome};

    use super::*;

    fn repository(generation: i64) -> GitRepository {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "ns", "generation": generation},
            "spec": {"url": "https://example.com/app.git", "interval": "1m"}
        }))
        .unwrap()
    }

    fn ready(object: &GitRepository) -> (String, String, String) {
        let ready = object.condition(READY).unwrap();
        (
            ready.status.clone(),
            ready.reason.clone(),
            ready.message.clone(),
        )
    }

    #[test]
    fn success_leaves_ready_true_from_artifact_in_storage() {
        let mut object = repository(2);
        let list = object.conditions_mut();
        mark_progressing(list, "reconciliation in progress", Some(2));
        let stored = "stored artifact for revision 'main@sha1:abc'";
        mark_true(
            list,
            ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            stored,
            Some(2),
        );
        conclude(&mut object, &RULE, &Outcome::Success);
        assert_eq!(object.observed_generation(), Some(2));
        assert!(object.condition(RECONCILING).is_none());
        assert_eq!(
            ready(&object),
            ("True".into(), "Succeeded".into(), stored.into())
        );
    }

    #[test]
    fn fetch_failure_wins_over_stored_artifact() {
        let mut object = repository(1);
        let list = object.conditions_mut();
        mark_progressing(list, "reconciliation in progress", Some(1));
        mark_true(
            list,
            ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            "stored",
            Some(1),
        );
        let failure =
            Failure::new(reason::GIT_OPERATION_FAILED, "unreachable").in_condition(FETCH_FAILED);
        conclude(&mut object, &RULE, &Outcome::Retry(failure));
        assert_eq!(object.observed_generation(), None);
        assert_eq!(ready(&object).0, "False");
        assert_eq!(ready(&object).1, "GitOperationFailed");
        assert_eq!(
            object.condition(RECONCILING).unwrap().reason,
            "ProgressingWithRetry"
        );
        assert!(conditions::is_true(
            object.conditions(),
            ARTIFACT_IN_STORAGE
        ));
    }

    #[test]
    fn failed_verification_gives_ready_its_reason() {
        let mut object = repository(1);
        let list = object.conditions_mut();
        mark_progressing(list, "reconciliation in progress", Some(1));
        mark_true(
            list,
            ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            "stored",
            Some(1),
        );
        let unsigned = reason::INVALID_COMMIT_SIGNATURE;
        conditions::set(
            list,
            SOURCE_VERIFIED,
            ConditionStatus::False,
            unsigned,
            "unsigned",
            Some(1),
        );
        conclude(&mut object, &RULE, &Outcome::retry(unsigned, "unsigned"));
        assert_eq!(object.observed_generation(), None);
        assert_eq!(ready(&object).0, "False");
        assert_eq!(ready(&object).1, "InvalidCommitSignature");
    }

    #[test]
    fn stalled_sets_ready_false_with_the_stall_reason() {
        let mut object = repository(1);
        mark_progressing(
            object.conditions_mut(),
            "reconciliation in progress",
            Some(1),
        );
        conclude(
            &mut object,
            &RULE,
            &Outcome::stalled("URLInvalid", "bad url"),
        );
        assert_eq!(object.observed_generation(), Some(1));
        assert!(object.condition(RECONCILING).is_none());
        assert_eq!(ready(&object).0, "False");
        assert_eq!(ready(&object).1, "URLInvalid");
    }
}
