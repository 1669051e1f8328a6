//! Pure helpers over `status.conditions`, following Flux's condition conventions.
//!
//! Negative-polarity ("abnormal-true") types such as `Reconciling`, `Stalled` or `FetchFailed`
//! are present only while True; the `Ready` summary inverts them when merging.

use std::cmp::Ordering;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use sluice_api::meta::MAX_CONDITION_MESSAGE_LENGTH;
use sluice_api::meta::condition_type::{READY, RECONCILING, STALLED};

/// The status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// The API spelling: "True", "False" or "Unknown".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    /// Reads an API status string; anything unrecognised is Unknown.
    pub fn parse(status: &str) -> Self {
        match status {
            "True" => Self::True,
            "False" => Self::False,
            _ => Self::Unknown,
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// Returns the condition of the given type.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

/// The status of the given type, or `None` when the condition is absent.
pub fn status_of(conditions: &[Condition], type_: &str) -> Option<ConditionStatus> {
    get(conditions, type_).map(|condition| ConditionStatus::parse(&condition.status))
}

/// True only when the condition exists with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some(ConditionStatus::True)
}

/// True only when the condition exists with status False.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some(ConditionStatus::False)
}

/// Removes the condition of the given type; returns whether one was removed.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|condition| condition.type_ != type_);
    conditions.len() != before
}

/// `message` cut to [`MAX_CONDITION_MESSAGE_LENGTH`] bytes on a character boundary.
pub fn truncate(message: &str) -> String {
    if message.len() <= MAX_CONDITION_MESSAGE_LENGTH {
        return message.to_owned();
    }
    let mut end = MAX_CONDITION_MESSAGE_LENGTH;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

/// Sets a condition, keeping `lastTransitionTime` unless the status changes.
///
/// `observedGeneration` is always updated to `generation`; the message is [`truncate`]d;
/// conditions are kept in kubectl-friendly order (Stalled, Reconciling, Ready, then by type).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    let message: String = message.into();
    let mut condition = Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: if message.len() > MAX_CONDITION_MESSAGE_LENGTH {
            truncate(&message)
        } else {
            message
        },
        observed_generation: generation,
        last_transition_time: now_seconds(),
    };
    match conditions
        .iter_mut()
        .find(|existing| existing.type_ == type_)
    {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
    conditions.sort_by(|a, b| display_order(&a.type_, &b.type_));
}

/// Marks a reconcile in progress: `Reconciling=True`, `Stalled` removed.
pub fn mark_reconciling(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    remove(conditions, STALLED);
    set(
        conditions,
        RECONCILING,
        ConditionStatus::True,
        reason,
        message,
        generation,
    );
}

/// Marks the object stalled: `Stalled=True`, `Reconciling` removed.
pub fn mark_stalled(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    remove(conditions, RECONCILING);
    set(
        conditions,
        STALLED,
        ConditionStatus::True,
        reason,
        message,
        generation,
    );
}

/// Marks a successful reconcile: `Ready=True`, `Reconciling` and `Stalled` removed.
pub fn mark_ready(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    remove(conditions, RECONCILING);
    remove(conditions, STALLED);
    set(
        conditions,
        READY,
        ConditionStatus::True,
        reason,
        message,
        generation,
    );
}

/// Marks a failed reconcile: `Ready=False` with the failure reason.
pub fn mark_not_ready(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) {
    set(
        conditions,
        READY,
        ConditionStatus::False,
        reason,
        message,
        generation,
    );
}

/// Which conditions feed a summary condition, in priority order, and which are abnormal-true.
#[derive(Debug, Clone, Copy)]
pub struct SummaryPolicy<'a> {
    /// The condition being computed, usually `Ready`.
    pub target: &'a str,
    /// Types considered, highest priority first (it picks the reason and message).
    pub in_scope: &'a [&'a str],
    /// Types that are abnormal when True (e.g. `Stalled`, `Reconciling`, `FetchFailed`).
    pub negative_polarity: &'a [&'a str],
}

/// A computed summary condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

/// Computes the summary condition the way Flux does, or `None` when nothing is in scope.
///
/// Conditions are ranked: abnormal-true first, then normal-false, normal-true, abnormal-false,
/// unknown. The best-ranked group decides the status (inverted when its polarity differs from the
/// target's) and its highest-priority member supplies reason and message.
pub fn summarize(conditions: &[Condition], policy: &SummaryPolicy<'_>) -> Option<Summary> {
    let target_negative = policy.negative_polarity.contains(&policy.target);
    let rank = |condition: &Condition| {
        let negative = policy.negative_polarity.contains(&condition.type_.as_str());
        match (ConditionStatus::parse(&condition.status), negative) {
            (ConditionStatus::True, true) => 0,
            (ConditionStatus::False, false) => 1,
            (ConditionStatus::True, false) => 2,
            (ConditionStatus::False, true) => 3,
            (ConditionStatus::Unknown, _) => 4,
        }
    };
    let priority = |condition: &Condition| {
        policy
            .in_scope
            .iter()
            .position(|type_| *type_ == condition.type_)
    };
    let best = conditions
        .iter()
        .filter(|condition| condition.type_ != policy.target)
        .filter_map(|condition| priority(condition).map(|position| (condition, position)))
        .min_by_key(|(condition, position)| (rank(condition), *position))
        .map(|(condition, _)| condition)?;
    let negative = policy.negative_polarity.contains(&best.type_.as_str());
    let status = match ConditionStatus::parse(&best.status) {
        ConditionStatus::Unknown => ConditionStatus::Unknown,
        status if negative == target_negative => status,
        ConditionStatus::True => ConditionStatus::False,
        ConditionStatus::False => ConditionStatus::True,
    };
    Some(Summary {
        status,
        reason: best.reason.clone(),
        message: best.message.clone(),
    })
}

/// Sets the summary condition computed by [`summarize`]; leaves it untouched when nothing is in scope.
pub fn set_summary(
    conditions: &mut Vec<Condition>,
    policy: &SummaryPolicy<'_>,
    generation: Option<i64>,
) {
    if let Some(summary) = summarize(conditions, policy) {
        set(
            conditions,
            policy.target,
            summary.status,
            &summary.reason,
            summary.message,
            generation,
        );
    }
}

fn now_seconds() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn display_order(a: &str, b: &str) -> Ordering {
    let weight = |type_: &str| match type_ {
        STALLED => 0,
        RECONCILING => 1,
        READY => 2,
        _ => 3,
    };
    weight(a).cmp(&weight(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::meta::reason::{
        PROGRESSING as REASON_PROGRESSING, SUCCEEDED as REASON_SUCCEEDED,
    };

    const FETCH_FAILED: &str = "FetchFailed";
    const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    const SOURCE_VERIFIED: &str = "SourceVerified";

    const POLICY: SummaryPolicy<'static> = SummaryPolicy {
        target: READY,
        in_scope: &[
            FETCH_FAILED,
            SOURCE_VERIFIED,
            ARTIFACT_IN_STORAGE,
            STALLED,
            RECONCILING,
        ],
        negative_polarity: &[FETCH_FAILED, STALLED, RECONCILING],
    };

    fn old_time() -> Time {
        Time(Timestamp::from_second(1_600_000_000).expect("valid timestamp"))
    }

    fn age(conditions: &mut [Condition]) {
        for condition in conditions {
            condition.last_transition_time = old_time();
        }
    }

    #[test]
    fn set_adds_and_updates_in_place() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            READY,
            ConditionStatus::False,
            "Failed",
            "boom",
            Some(1),
        );
        assert_eq!(conditions.len(), 1);
        assert!(is_false(&conditions, READY));
        assert_eq!(conditions[0].observed_generation, Some(1));
        set(
            &mut conditions,
            READY,
            ConditionStatus::True,
            REASON_SUCCEEDED,
            "ok",
            Some(2),
        );
        assert_eq!(conditions.len(), 1);
        assert!(is_true(&conditions, READY));
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert_eq!(conditions[0].message, "ok");
    }

    #[test]
    fn set_keeps_transition_time_while_status_is_unchanged() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            READY,
            ConditionStatus::False,
            "A",
            "first",
            Some(1),
        );
        age(&mut conditions);
        set(
            &mut conditions,
            READY,
            ConditionStatus::False,
            "B",
            "second",
            Some(2),
        );
        assert_eq!(conditions[0].last_transition_time, old_time());
        assert_eq!(conditions[0].reason, "B");
        assert_eq!(conditions[0].observed_generation, Some(2));
        set(
            &mut conditions,
            READY,
            ConditionStatus::True,
            "C",
            "third",
            Some(2),
        );
        assert!(conditions[0].last_transition_time > old_time());
    }

    #[test]
    fn conditions_are_sorted_for_kubectl() {
        let mut conditions = Vec::new();
        for type_ in ["Zeta", READY, "Alpha", RECONCILING, STALLED] {
            set(&mut conditions, type_, ConditionStatus::True, "R", "", None);
        }
        let order: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(order, [STALLED, RECONCILING, READY, "Alpha", "Zeta"]);
    }

    #[test]
    fn marks_follow_flux_conventions() {
        let mut conditions = Vec::new();
        mark_stalled(&mut conditions, "InvalidURL", "bad url", Some(1));
        assert!(is_true(&conditions, STALLED));
        mark_reconciling(&mut conditions, REASON_PROGRESSING, "working", Some(2));
        assert!(get(&conditions, STALLED).is_none());
        assert!(is_true(&conditions, RECONCILING));
        mark_stalled(&mut conditions, "InvalidURL", "bad url", Some(2));
        assert!(get(&conditions, RECONCILING).is_none());
        mark_reconciling(&mut conditions, REASON_PROGRESSING, "working", Some(3));
        mark_ready(&mut conditions, REASON_SUCCEEDED, "done", Some(3));
        assert!(is_true(&conditions, READY));
        assert!(get(&conditions, RECONCILING).is_none());
        assert!(get(&conditions, STALLED).is_none());
        mark_not_ready(&mut conditions, "Failed", "broken", Some(3));
        assert!(is_false(&conditions, READY));
        assert!(remove(&mut conditions, READY));
        assert!(!remove(&mut conditions, READY));
        assert_eq!(status_of(&conditions, READY), None);
    }

    fn with(conditions: &[(&str, ConditionStatus, &str)]) -> Vec<Condition> {
        let mut result = Vec::new();
        for (type_, status, reason) in conditions {
            set(
                &mut result,
                type_,
                *status,
                reason,
                format!("{reason} message"),
                Some(1),
            );
        }
        result
    }

    #[test]
    fn summary_is_ready_when_only_positive_conditions_hold() {
        let conditions = with(&[(ARTIFACT_IN_STORAGE, ConditionStatus::True, REASON_SUCCEEDED)]);
        let summary = summarize(&conditions, &POLICY).expect("summary");
        assert_eq!(summary.status, ConditionStatus::True);
        assert_eq!(summary.reason, REASON_SUCCEEDED);
        assert_eq!(summary.message, "Succeeded message");
    }

    #[test]
    fn abnormal_true_conditions_make_ready_false() {
        let conditions = with(&[
            (ARTIFACT_IN_STORAGE, ConditionStatus::True, REASON_SUCCEEDED),
            (RECONCILING, ConditionStatus::True, REASON_PROGRESSING),
            (FETCH_FAILED, ConditionStatus::True, "GitOperationFailed"),
        ]);
        let summary = summarize(&conditions, &POLICY).expect("summary");
        assert_eq!(summary.status, ConditionStatus::False);
        assert_eq!(
            summary.reason, "GitOperationFailed",
            "in-scope order decides within the group"
        );
    }

    #[test]
    fn normal_false_outranks_normal_true() {
        let conditions = with(&[
            (ARTIFACT_IN_STORAGE, ConditionStatus::True, REASON_SUCCEEDED),
            (
                SOURCE_VERIFIED,
                ConditionStatus::False,
                "InvalidCommitSignature",
            ),
        ]);
        let summary = summarize(&conditions, &POLICY).expect("summary");
        assert_eq!(summary.status, ConditionStatus::False);
        assert_eq!(summary.reason, "InvalidCommitSignature");
    }

    #[test]
    fn abnormal_false_counts_as_healthy() {
        let conditions = with(&[(FETCH_FAILED, ConditionStatus::False, "Recovered")]);
        let summary = summarize(&conditions, &POLICY).expect("summary");
        assert_eq!(summary.status, ConditionStatus::True);
    }

    #[test]
    fn unknown_only_yields_unknown_and_out_of_scope_is_ignored() {
        let conditions = with(&[
            (ARTIFACT_IN_STORAGE, ConditionStatus::Unknown, "Pending"),
            ("Healthy", ConditionStatus::False, "Ignored"),
        ]);
        let summary = summarize(&conditions, &POLICY).expect("summary");
        assert_eq!(summary.status, ConditionStatus::Unknown);
        assert_eq!(summary.reason, "Pending");
        assert_eq!(
            summarize(&with(&[("Healthy", ConditionStatus::False, "X")]), &POLICY),
            None
        );
    }

    #[test]
    fn set_summary_writes_ready_and_keeps_it_when_nothing_is_in_scope() {
        let mut conditions = with(&[(STALLED, ConditionStatus::True, "InvalidURL")]);
        set_summary(&mut conditions, &POLICY, Some(4));
        let ready = get(&conditions, READY).expect("ready set");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, "InvalidURL");
        assert_eq!(ready.observed_generation, Some(4));

        let mut only_ready = Vec::new();
        mark_ready(&mut only_ready, REASON_SUCCEEDED, "fine", Some(1));
        set_summary(&mut only_ready, &POLICY, Some(2));
        assert!(is_true(&only_ready, READY));
        assert_eq!(only_ready[0].observed_generation, Some(1));
    }
}
