//! The outcome vocabulary of a reconcile and the pure rules that turn an outcome into conditions,
//! an event and a requeue, following Flux's `summarize` and `finalizeStatus` helpers.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sluice_api::FluxObject;
use sluice_api::meta::condition_type::{READY, RECONCILING, STALLED};
use sluice_api::meta::reason;

use crate::conditions::{self, ConditionStatus, SummaryPolicy};
use crate::events::ObjectEvent;

/// A failed reconcile: the reason and message `Ready` (and an event) carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Flux reason, e.g. `FetchFailed` or `BuildFailed`.
    pub reason: String,
    /// What failed and what to do; never a secret.
    pub message: String,
    /// Negative-polarity condition recording this failure (set `True` with reason and message).
    pub condition: Option<&'static str>,
    /// When to retry; `None` for the runner's per-object exponential backoff.
    pub retry_after: Option<Duration>,
    /// Revision the failure concerns, attached to its event.
    pub revision: Option<String>,
}

impl Failure {
    /// A failure with `reason` and `message`, retried with backoff.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
            condition: None,
            retry_after: None,
            revision: None,
        }
    }

    /// Records the failure in the negative-polarity `condition` too.
    pub fn in_condition(mut self, condition: &'static str) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Retries after `delay` instead of backing off.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Attaches the revision the failure concerns to its event.
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }
}

/// How a kind's steps ended.
///
/// ```
/// use std::time::Duration;
/// use sluice_runtime::lifecycle::{Failure, Outcome};
///
/// let forbidden = Failure::new(
///     "ConfigMapOperationFailed",
///     "writing ConfigMap hello failed: forbidden; grant the controller patch on configmaps",
/// );
/// let outcome = Outcome::Retry(forbidden.retry_after(Duration::from_secs(30)));
/// assert_eq!(outcome.failure().and_then(|f| f.retry_after), Some(Duration::from_secs(30)));
///
/// let stalled = Outcome::stalled("EmptyMessage", "spec.message is empty; set a message");
/// assert_eq!(stalled.failure().map(|f| f.reason.as_str()), Some("EmptyMessage"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Up to date: `Reconciling`/`Stalled` removed, `observedGeneration` advanced, requeued after `spec.interval`.
    Success,
    /// Still converging (e.g. health checks pending): `Reconciling=True`, `Ready=Unknown`, requeued after `after`.
    Progressing { message: String, after: Duration },
    /// A dependency is not ready yet: `Ready=False`, no warning event, requeued after `retry_after` or `--requeue-dependency`.
    Waiting(Failure),
    /// A failure to retry: `Ready=False`, `Reconciling` becomes `ProgressingWithRetry`, a warning event.
    Retry(Failure),
    /// Cannot progress until the spec changes: `Stalled=True`, `Ready=False`, a warning event, no requeue.
    Stalled(Failure),
}

impl Outcome {
    /// A retryable failure with `reason` and `message`.
    pub fn retry(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Retry(Failure::new(reason, message))
    }

    /// A stall with `reason` and `message`.
    pub fn stalled(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Stalled(Failure::new(reason, message))
    }

    /// A wait for a dependency with `reason` and `message`.
    pub fn waiting(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Waiting(Failure::new(reason, message))
    }

    /// The failure this outcome carries, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Waiting(failure) | Self::Retry(failure) | Self::Stalled(failure) => Some(failure),
            Self::Success | Self::Progressing { .. } => None,
        }
    }
}

/// How a kind computes `Ready`.
pub enum ReadyRule<K> {
    /// `Ready` summarises owned conditions (highest priority first), as Flux's source kinds do.
    /// After a failure only `after_failure` is considered, so a failing positive-polarity
    /// condition (e.g. `SourceVerified=False`) gives `Ready` its reason.
    Summary {
        inputs: &'static [&'static str],
        after_failure: &'static [&'static str],
    },
    /// `Ready` follows the outcome, as Flux's Kustomization does; on success it carries
    /// `reason` and `message(object)`.
    Outcome {
        reason: &'static str,
        message: fn(&K) -> String,
    },
}

/// What happens after a reconcile, before the runner's requeue rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Requeue after `spec.interval` (jittered).
    Interval,
    /// Requeue after this delay; the reconcile succeeded or is waiting.
    After(Duration),
    /// Requeue after `--requeue-dependency`.
    Dependency,
    /// A failure: retried after the delay, or with backoff when `None`.
    Failed(Option<Duration>),
    /// Wait for a change to the object.
    OnChange,
}

/// What an outcome does to the object, beyond its conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    /// The event to publish, if any.
    pub event: Option<ObjectEvent>,
    /// How to requeue.
    pub next: Next,
}

/// Marks a reconcile in progress: `Reconciling=True` with `message`; `Ready=Unknown` unless a
/// summarised `Ready` is already False (then the failure stays visible until resolved).
pub fn mark_progressing<K>(
    list: &mut Vec<Condition>,
    rule: &ReadyRule<K>,
    message: &str,
    generation: Option<i64>,
) {
    conditions::mark_reconciling(list, reason::PROGRESSING, message, generation);
    let ready_message = match rule {
        ReadyRule::Summary { .. } if conditions::is_false(list, READY) => return,
        ReadyRule::Summary { .. } => message,
        ReadyRule::Outcome { .. } => "Reconciliation in progress",
    };
    conditions::set(
        list,
        READY,
        ConditionStatus::Unknown,
        reason::PROGRESSING,
        ready_message,
        generation,
    );
}

/// Applies `outcome` to `object`'s conditions, `observedGeneration` and `lastHandledReconcileAt`
/// and says which event to publish and how to requeue. Pure: no I/O.
pub fn conclude<K: FluxObject>(
    object: &mut K,
    rule: &ReadyRule<K>,
    outcome: &Outcome,
) -> Conclusion {
    let generation = object.meta().generation;
    let previous_ready = object.condition(READY).cloned();
    if let Some(failure) = outcome.failure()
        && let Some(condition) = failure.condition
    {
        conditions::set(
            object.conditions_mut(),
            condition,
            ConditionStatus::True,
            &failure.reason,
            failure.message.clone(),
            generation,
        );
    }
    let next = match outcome {
        Outcome::Success => {
            succeed(object, rule, generation);
            Next::Interval
        }
        Outcome::Progressing { message, after } => {
            mark_progressing(object.conditions_mut(), rule, message, generation);
            Next::After(*after)
        }
        Outcome::Waiting(failure) => {
            fail(object, rule, failure, generation);
            failure.retry_after.map_or(Next::Dependency, Next::After)
        }
        Outcome::Retry(failure) => {
            fail(object, rule, failure, generation);
            Next::Failed(failure.retry_after)
        }
        Outcome::Stalled(failure) => {
            let list = object.conditions_mut();
            conditions::mark_stalled(list, &failure.reason, failure.message.clone(), generation);
            conditions::mark_not_ready(list, &failure.reason, failure.message.clone(), generation);
            if let Some(generation) = generation {
                object.set_observed_generation(generation);
            }
            Next::OnChange
        }
    };
    if let Some(token) = object.reconcile_request().token.map(str::to_owned) {
        object.set_last_handled_reconcile_at(&token);
    }
    let event = failure_event(outcome, previous_ready.as_ref());
    Conclusion { event, next }
}

fn succeed<K: FluxObject>(object: &mut K, rule: &ReadyRule<K>, generation: Option<i64>) {
    let direct = match rule {
        ReadyRule::Outcome { reason, message } => Some((*reason, message(object))),
        ReadyRule::Summary { .. } => None,
    };
    let list = object.conditions_mut();
    conditions::remove(list, RECONCILING);
    conditions::remove(list, STALLED);
    match (rule, direct) {
        (_, Some((reason, message))) => {
            conditions::set(
                list,
                READY,
                ConditionStatus::True,
                reason,
                message,
                generation,
            );
        }
        (ReadyRule::Summary { inputs, .. }, None) => {
            let policy = summary_policy::<K>(inputs);
            conditions::set_summary(list, &policy, generation);
        }
        (ReadyRule::Outcome { .. }, None) => {}
    }
    if let Some(generation) = generation {
        object.set_observed_generation(generation);
    }
}

fn summary_policy<K: FluxObject>(inputs: &'static [&'static str]) -> SummaryPolicy<'static> {
    SummaryPolicy {
        target: READY,
        in_scope: inputs,
        negative_polarity: K::NEGATIVE_POLARITY_CONDITIONS,
    }
}

fn fail<K: FluxObject>(
    object: &mut K,
    rule: &ReadyRule<K>,
    failure: &Failure,
    generation: Option<i64>,
) {
    let list = object.conditions_mut();
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
    let summarised = match rule {
        ReadyRule::Summary { after_failure, .. } => {
            conditions::summarize(list, &summary_policy::<K>(after_failure))
                .filter(|summary| summary.status == ConditionStatus::False)
        }
        ReadyRule::Outcome { .. } => None,
    };
    match summarised {
        Some(summary) => conditions::set(
            list,
            READY,
            summary.status,
            &summary.reason,
            summary.message,
            generation,
        ),
        None => {
            conditions::mark_not_ready(list, &failure.reason, failure.message.clone(), generation)
        }
    }
}

/// A warning event for a retry or stall, unless `Ready` already said exactly the same.
fn failure_event(outcome: &Outcome, previous_ready: Option<&Condition>) -> Option<ObjectEvent> {
    let failure = match outcome {
        Outcome::Retry(failure) | Outcome::Stalled(failure) => failure,
        Outcome::Success | Outcome::Progressing { .. } | Outcome::Waiting(_) => return None,
    };
    let repeated = previous_ready.is_some_and(|ready| {
        ready.status == ConditionStatus::False.as_str()
            && ready.reason == failure.reason
            && ready.message == conditions::truncate(&failure.message)
    });
    if repeated {
        return None;
    }
    let event = ObjectEvent::error(failure.reason.clone(), failure.message.clone());
    Some(match &failure.revision {
        Some(revision) => event.with_revision(revision.clone()),
        None => event,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_api::kustomize::Kustomization;
    use sluice_api::meta::condition_type::{
        ARTIFACT_IN_STORAGE, FETCH_FAILED, SOURCE_VERIFIED, STORAGE_OPERATION_FAILED,
    };
    use sluice_api::source::GitRepository;

    use super::*;

    const SOURCE_RULE: ReadyRule<GitRepository> = ReadyRule::Summary {
        inputs: &[
            STORAGE_OPERATION_FAILED,
            FETCH_FAILED,
            ARTIFACT_IN_STORAGE,
            SOURCE_VERIFIED,
            STALLED,
            RECONCILING,
        ],
        after_failure: &[
            STORAGE_OPERATION_FAILED,
            FETCH_FAILED,
            ARTIFACT_IN_STORAGE,
            SOURCE_VERIFIED,
        ],
    };

    fn applied(object: &Kustomization) -> String {
        format!(
            "Applied revision: {}",
            object.spec.path.clone().unwrap_or_default()
        )
    }

    const KUSTOMIZATION_RULE: ReadyRule<Kustomization> = ReadyRule::Outcome {
        reason: reason::RECONCILIATION_SUCCEEDED,
        message: applied,
    };

    fn git(generation: i64, annotations: serde_json::Value) -> GitRepository {
        serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "ns", "generation": generation, "annotations": annotations},
            "spec": {"url": "https://example.com/app.git", "interval": "1m"}
        }))
        .unwrap()
    }

    fn kustomization(generation: i64) -> Kustomization {
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": "ns", "generation": generation},
            "spec": {"interval": "5m", "prune": true, "path": "main@sha1:abc",
                     "sourceRef": {"kind": "GitRepository", "name": "app"}}
        }))
        .unwrap()
    }

    fn status_of(object: &impl FluxObject, type_: &str) -> Option<(String, String, String)> {
        object
            .condition(type_)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    fn triple(status: &str, reason: &str, message: &str) -> Option<(String, String, String)> {
        Some((status.to_owned(), reason.to_owned(), message.to_owned()))
    }

    #[test]
    fn summary_success_takes_ready_from_owned_conditions_and_observes_generation() {
        let mut object = git(3, json!({}));
        let generation = Some(3);
        mark_progressing(
            object.conditions_mut(),
            &SOURCE_RULE,
            "building",
            generation,
        );
        conditions::set(
            object.conditions_mut(),
            ARTIFACT_IN_STORAGE,
            ConditionStatus::True,
            reason::SUCCEEDED,
            "stored artifact for revision 'main@sha1:abc'",
            generation,
        );
        let conclusion = conclude(&mut object, &SOURCE_RULE, &Outcome::Success);
        assert_eq!(
            status_of(&object, READY),
            triple(
                "True",
                "Succeeded",
                "stored artifact for revision 'main@sha1:abc'"
            )
        );
        assert!(object.condition(RECONCILING).is_none());
        assert_eq!(object.observed_generation(), Some(3));
        assert_eq!(
            conclusion,
            Conclusion {
                event: None,
                next: Next::Interval
            }
        );
    }

    #[test]
    fn retry_records_the_condition_keeps_generation_and_alerts_once() {
        let mut object = git(2, json!({}));
        mark_progressing(object.conditions_mut(), &SOURCE_RULE, "building", Some(2));
        let outcome = Outcome::Retry(
            Failure::new(
                reason::AUTHENTICATION_FAILED,
                "authentication required; check secretRef",
            )
            .in_condition(FETCH_FAILED)
            .with_revision("main@sha1:abc"),
        );
        let first = conclude(&mut object, &SOURCE_RULE, &outcome);
        assert_eq!(
            status_of(&object, FETCH_FAILED),
            triple(
                "True",
                "AuthenticationFailed",
                "authentication required; check secretRef"
            )
        );
        assert_eq!(
            status_of(&object, READY),
            triple(
                "False",
                "AuthenticationFailed",
                "authentication required; check secretRef"
            )
        );
        assert_eq!(
            object.condition(RECONCILING).unwrap().reason,
            reason::PROGRESSING_WITH_RETRY
        );
        assert_eq!(object.observed_generation(), None);
        assert_eq!(first.next, Next::Failed(None));
        let event = first.event.expect("a warning event");
        assert_eq!(event.reason, "AuthenticationFailed");
        assert_eq!(
            event.metadata.get("revision").map(String::as_str),
            Some("main@sha1:abc")
        );
        let repeated = conclude(&mut object, &SOURCE_RULE, &outcome);
        assert_eq!(
            repeated.event, None,
            "the same failure again is not re-announced"
        );
    }

    #[test]
    fn summary_failure_prefers_a_failing_positive_condition() {
        let mut object = git(1, json!({}));
        conditions::set(
            object.conditions_mut(),
            SOURCE_VERIFIED,
            ConditionStatus::False,
            reason::INVALID_COMMIT_SIGNATURE,
            "signature of commit abc does not match",
            Some(1),
        );
        conclude(
            &mut object,
            &SOURCE_RULE,
            &Outcome::retry(reason::INVALID_COMMIT_SIGNATURE, "verification failed"),
        );
        assert_eq!(
            status_of(&object, READY),
            triple(
                "False",
                "InvalidCommitSignature",
                "signature of commit abc does not match"
            )
        );
    }

    #[test]
    fn waiting_is_not_an_alert_and_requeues_for_the_dependency() {
        let mut object = kustomization(1);
        let conclusion = conclude(
            &mut object,
            &KUSTOMIZATION_RULE,
            &Outcome::waiting(
                reason::ARTIFACT_FAILED,
                "Source is not ready, artifact not found",
            ),
        );
        assert_eq!(
            status_of(&object, READY),
            triple(
                "False",
                "ArtifactFailed",
                "Source is not ready, artifact not found"
            )
        );
        assert_eq!(
            conclusion,
            Conclusion {
                event: None,
                next: Next::Dependency
            }
        );
    }

    #[test]
    fn stalled_marks_stalled_and_waits_for_a_change() {
        let mut object = kustomization(4);
        mark_progressing(
            object.conditions_mut(),
            &KUSTOMIZATION_RULE,
            "Fetching manifests",
            Some(4),
        );
        let conclusion = conclude(
            &mut object,
            &KUSTOMIZATION_RULE,
            &Outcome::stalled(
                reason::ACCESS_DENIED,
                "cross-namespace references have been blocked",
            ),
        );
        assert_eq!(
            status_of(&object, STALLED),
            triple(
                "True",
                "AccessDenied",
                "cross-namespace references have been blocked"
            )
        );
        assert_eq!(
            status_of(&object, READY),
            triple(
                "False",
                "AccessDenied",
                "cross-namespace references have been blocked"
            )
        );
        assert!(object.condition(RECONCILING).is_none());
        assert_eq!(object.observed_generation(), Some(4));
        assert_eq!(conclusion.next, Next::OnChange);
        assert_eq!(conclusion.event.unwrap().reason, "AccessDenied");
    }

    #[test]
    fn outcome_rule_success_sets_ready_from_the_kind_and_clears_a_stall() {
        let mut object = kustomization(2);
        conclude(
            &mut object,
            &KUSTOMIZATION_RULE,
            &Outcome::stalled(reason::BUILD_FAILED, "bad"),
        );
        conclude(&mut object, &KUSTOMIZATION_RULE, &Outcome::Success);
        assert_eq!(
            status_of(&object, READY),
            triple(
                "True",
                "ReconciliationSucceeded",
                "Applied revision: main@sha1:abc"
            )
        );
        assert!(object.condition(STALLED).is_none());
    }

    #[test]
    fn progressing_keeps_ready_unknown_and_requeues_after_the_delay() {
        let mut object = kustomization(1);
        let after = Duration::from_secs(2);
        let conclusion = conclude(
            &mut object,
            &KUSTOMIZATION_RULE,
            &Outcome::Progressing {
                message: "Health check in progress".into(),
                after,
            },
        );
        assert_eq!(
            status_of(&object, RECONCILING),
            triple("True", "Progressing", "Health check in progress")
        );
        assert_eq!(
            status_of(&object, READY),
            triple("Unknown", "Progressing", "Reconciliation in progress")
        );
        assert_eq!(conclusion.next, Next::After(after));
    }

    #[test]
    fn handled_request_token_is_recorded_whatever_the_outcome() {
        let mut object = git(
            1,
            json!({"reconcile.fluxcd.io/requestedAt": "2026-12-02T10:00:00Z"}),
        );
        conclude(
            &mut object,
            &SOURCE_RULE,
            &Outcome::retry(reason::FAILED, "x"),
        );
        assert_eq!(
            object.last_handled_reconcile_at(),
            Some("2026-12-02T10:00:00Z")
        );
    }

    #[test]
    fn summary_progress_keeps_a_failing_ready_visible() {
        let mut object = git(1, json!({}));
        conclude(
            &mut object,
            &SOURCE_RULE,
            &Outcome::retry(reason::FAILED, "broken"),
        );
        mark_progressing(object.conditions_mut(), &SOURCE_RULE, "retrying", Some(1));
        assert_eq!(
            status_of(&object, READY),
            triple("False", "Failed", "broken")
        );
    }
}
