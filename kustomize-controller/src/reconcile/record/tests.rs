//! The Kustomization's record of an attempt, alone and concluded by the shared lifecycle.

use serde_json::json;
use sluice_api::kustomize::ResourceRef;
use sluice_api::meta::condition_type::{RECONCILING, STALLED};
use sluice_runtime::Failure;
use sluice_runtime::conditions::is_false;
use sluice_runtime::lifecycle::{Next, conclude, mark_progressing};

use super::*;
use crate::apply::{Action, ApplyError, Change};
use crate::objects::object_id;

const REVISION: &str = "main@sha1:abc";
const DIGEST: &str = "sha256:1234";

fn kustomization(generation: i64) -> Kustomization {
    serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": "apps", "generation": generation},
        "spec": {"interval": "5m", "retryInterval": "30s", "prune": true,
                 "sourceRef": {"kind": "OCIRepository", "name": "app"}}
    }))
    .unwrap()
}

fn artifact(revision: &str) -> Artifact {
    serde_json::from_value(json!({
        "digest": "sha256:aa", "lastUpdateTime": "2026-01-01T00:00:00Z", "path": "p",
        "revision": revision, "url": "http://source/p.tar.gz",
        "metadata": {OCI_REVISION_ANNOTATION: "v1.2.0@sha1:def"}
    }))
    .unwrap()
}

fn change(name: &str) -> Change {
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": name, "namespace": "apps"}});
    Change {
        subject: format!("ConfigMap/apps/{name}"),
        id: object_id(&desired),
        version: "v1".into(),
        action: Action::Created,
        desired,
        written: None,
    }
}

fn entry(name: &str) -> ResourceRef {
    ResourceRef {
        id: format!("apps_{name}__ConfigMap"),
        version: "v1".into(),
    }
}

/// An attempt that got through apply and prune of `applied`.
fn applied(revision: &str, applied: &[&str], health: HealthVerdict) -> Attempt {
    Attempt {
        artifact: Some(artifact(revision)),
        fetched: true,
        digest: Some(DIGEST.into()),
        secret_values: Vec::new(),
        inventory_ahead: None,
        change_set: Some(ApplyReport {
            changes: applied.iter().map(|name| change(name)).collect(),
            errors: Vec::new(),
        }),
        pruned: Some(PruneReport::default()),
        health: Some(health),
        elapsed: Duration::from_millis(1500),
    }
}

/// A Kustomization that applied REVISION, ConfigMap `a`.
fn applied_a() -> Kustomization {
    let mut ks = kustomization(1);
    let attempt = applied(REVISION, &["a"], HealthVerdict::NotChecked);
    record(&mut ks, &attempt, Outcome::Success, now());
    ks
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn status_of(ks: &Kustomization) -> &KustomizationStatus {
    ks.status.as_ref().unwrap()
}

fn ids(ks: &Kustomization) -> Vec<String> {
    let inventory = status_of(ks).inventory.as_ref().unwrap();
    inventory.entries.iter().map(|e| e.id.clone()).collect()
}

fn condition<'a>(ks: &'a Kustomization, type_: &str) -> (&'a str, &'a str, &'a str) {
    let found = conditions::get(ks.conditions(), type_).unwrap();
    (&found.status, &found.reason, &found.message)
}

#[test]
fn success_records_revisions_inventory_health_history_and_announces_once() {
    let mut ks = kustomization(1);
    let attempt = applied(
        REVISION,
        &["a"],
        HealthVerdict::Passed {
            after: Duration::from_secs(3),
        },
    );
    let recorded = record(&mut ks, &attempt, Outcome::Success, now());
    assert_eq!(recorded.outcome, Outcome::Success);
    let status = status_of(&ks);
    assert_eq!(status.last_applied_revision.as_deref(), Some(REVISION));
    assert_eq!(status.last_attempted_revision.as_deref(), Some(REVISION));
    assert_eq!(
        status.last_applied_origin_revision.as_deref(),
        Some("v1.2.0@sha1:def")
    );
    assert_eq!(ids(&ks), ["apps_a__ConfigMap"]);
    assert_eq!(
        condition(&ks, HEALTHY),
        ("True", "Succeeded", "Health check passed in 3s")
    );
    let history = &status_of(&ks).history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].digest, DIGEST);
    assert_eq!(history[0].last_reconciled_status, "ReconciliationSucceeded");
    assert_eq!(history[0].last_reconciled_duration, "1.5s");
    assert_eq!(history[0].metadata["revision"], REVISION);
    assert_eq!(history[0].metadata["originRevision"], "v1.2.0@sha1:def");

    let [health, notice] = recorded.notices.as_slice() else {
        panic!(
            "health and success notices on becoming Ready: {:?}",
            recorded.notices
        );
    };
    assert_eq!(
        (health.reason.as_str(), health.message.as_str()),
        ("Progressing", "Health check passed in 3s")
    );
    assert_eq!(health.metadata["revision"], REVISION);
    assert_eq!(notice.reason, "ReconciliationSucceeded");
    assert_eq!(
        notice.message,
        "Reconciliation finished in 1.5s, next run in 5m0s"
    );
    assert_eq!(notice.metadata["revision"], REVISION);
    assert_eq!(notice.metadata["commit_status"], "update");
    assert_eq!(notice.metadata["originRevision"], "v1.2.0@sha1:def");

    conclude(&mut ks, &READY_RULE, &Outcome::Success);
    let again = record(&mut ks, &attempt, Outcome::Success, now());
    assert!(
        again.notices.is_empty(),
        "Ready and healthy at the same revision is quiet"
    );
    assert_eq!(status_of(&ks).history[0].total_reconciliations, 2);
    let newer = applied("main@sha1:fed", &["a"], HealthVerdict::NotChecked);
    let announced = record(&mut ks, &newer, Outcome::Success, now());
    assert_eq!(announced.notices.len(), 1, "a new revision is announced");
    assert!(conditions::get(ks.conditions(), HEALTHY).is_none());
}

#[test]
fn a_retry_waits_the_retry_interval_carries_the_revision_and_keeps_the_applied_revision() {
    let mut ks = applied_a();
    let mut attempt = applied("main@sha1:fed", &["a", "b"], HealthVerdict::NotChecked);
    attempt.change_set = Some(ApplyReport {
        changes: vec![change("b")],
        errors: vec![ApplyError::Apply {
            subject: "ConfigMap/apps/c".into(),
            reason: "denied".into(),
        }],
    });
    attempt.pruned = None;
    attempt.health = None;
    let outcome = Outcome::retry(
        reason::RECONCILIATION_FAILED,
        "ConfigMap/apps/c apply failed: denied",
    );
    let recorded = record(&mut ks, &attempt, outcome, now());
    assert_eq!(
        recorded.outcome,
        Outcome::Retry(
            Failure::new(
                reason::RECONCILIATION_FAILED,
                "ConfigMap/apps/c apply failed: denied"
            )
            .retry_after(Duration::from_secs(30))
            .with_revision("main@sha1:fed")
        )
    );
    assert!(recorded.notices.is_empty());
    let status = status_of(&ks);
    assert_eq!(status.last_applied_revision.as_deref(), Some(REVISION));
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some("main@sha1:fed")
    );
    assert_eq!(
        ids(&ks),
        ["apps_a__ConfigMap", "apps_b__ConfigMap"],
        "what a failed apply wrote joins the previous inventory"
    );
    assert_eq!(
        status.history[0].last_reconciled_status,
        "ReconciliationFailed"
    );
    assert_eq!(status.history[0].metadata["revision"], "main@sha1:fed");
}

#[test]
fn objects_that_could_not_be_pruned_stay_in_the_inventory() {
    let mut ks = kustomization(1);
    let mut attempt = applied(REVISION, &["a"], HealthVerdict::NotChecked);
    attempt.health = None;
    attempt.pruned = Some(PruneReport {
        deleted: vec!["ConfigMap/apps/b".into()],
        failed: vec![(entry("c"), "forbidden".into())],
    });
    record(
        &mut ks,
        &attempt,
        Outcome::retry(reason::PRUNE_FAILED, "pruning failed"),
        now(),
    );
    assert_eq!(ids(&ks), ["apps_a__ConfigMap", "apps_c__ConfigMap"]);
}

#[test]
fn an_apply_cut_short_keeps_the_inventory_written_ahead_of_it() {
    let mut ks = applied_a();
    let mut attempt = applied("main@sha1:fed", &[], HealthVerdict::NotChecked);
    attempt.change_set = None;
    attempt.pruned = None;
    attempt.health = None;
    attempt.inventory_ahead = Some(ResourceInventory {
        entries: vec![entry("a"), entry("b")],
    });
    let timed_out = Outcome::retry(reason::RECONCILIATION_FAILED, "apply did not finish");
    record(&mut ks, &attempt, timed_out.clone(), now());
    assert_eq!(
        ids(&ks),
        ["apps_a__ConfigMap", "apps_b__ConfigMap"],
        "objects the apply may have created stay tracked"
    );

    attempt.inventory_ahead = None;
    let mut before_apply = kustomization(1);
    record(&mut before_apply, &attempt, timed_out, now());
    assert_eq!(status_of(&before_apply).inventory, None);
}

#[test]
fn pending_and_failed_health_set_healthy_without_applying_the_revision() {
    let mut ks = kustomization(1);
    let pending = applied(
        REVISION,
        &["a"],
        HealthVerdict::Pending {
            message: "waiting".into(),
        },
    );
    let outcome = Outcome::Progressing {
        message: "waiting".into(),
        after: Duration::from_secs(5),
    };
    let recorded = record(&mut ks, &pending, outcome.clone(), now());
    assert_eq!(
        recorded,
        Recorded {
            outcome,
            notices: Vec::new()
        }
    );
    assert_eq!(
        condition(&ks, HEALTHY),
        ("Unknown", "Progressing", "Health check in progress")
    );
    assert_eq!(status_of(&ks).last_applied_revision, None);
    assert!(status_of(&ks).history.is_empty());
    assert_eq!(ids(&ks), ["apps_a__ConfigMap"]);

    let message = "health check failed after 5s: Pod/apps/a status: 'Failed'";
    let failed = applied(
        REVISION,
        &["a"],
        HealthVerdict::Failed {
            message: message.into(),
        },
    );
    record(
        &mut ks,
        &failed,
        Outcome::retry(reason::HEALTH_CHECK_FAILED, message),
        now(),
    );
    assert_eq!(
        condition(&ks, HEALTHY),
        ("False", "HealthCheckFailed", message)
    );
    assert_eq!(
        status_of(&ks).history[0].last_reconciled_status,
        "HealthCheckFailed"
    );
}

#[test]
fn waits_and_stalls_before_a_build_leave_the_record_alone() {
    let mut ks = kustomization(1);
    let waiting = Outcome::waiting(
        reason::ARTIFACT_FAILED,
        "Source is not ready, artifact not found",
    );
    let recorded = record(&mut ks, &Attempt::default(), waiting.clone(), now());
    assert_eq!(
        recorded.outcome, waiting,
        "waits requeue after --requeue-dependency"
    );
    let stalled = Outcome::stalled(reason::ACCESS_DENIED, "blocked");
    let attempt = Attempt {
        artifact: Some(artifact(REVISION)),
        ..Attempt::default()
    };
    assert_eq!(
        record(&mut ks, &attempt, stalled.clone(), now()).outcome,
        stalled
    );
    let status = status_of(&ks);
    assert_eq!(status.last_attempted_revision, None);
    assert_eq!(status.inventory, None);
    assert!(status.history.is_empty());
}

#[test]
fn failure_then_success_follows_flux() {
    let mut ks = kustomization(2);
    ks.metadata.annotations = Some(
        [(
            "reconcile.fluxcd.io/requestedAt".to_owned(),
            "t1".to_owned(),
        )]
        .into(),
    );
    mark_progressing(
        ks.conditions_mut(),
        &READY_RULE,
        "Fetching manifests",
        Some(2),
    );
    let failed = Attempt {
        artifact: Some(artifact(REVISION)),
        fetched: true,
        ..Attempt::default()
    };
    let recorded = record(
        &mut ks,
        &failed,
        Outcome::retry(reason::BUILD_FAILED, "bad yaml"),
        now(),
    );
    let conclusion = conclude(&mut ks, &READY_RULE, &recorded.outcome);
    assert_eq!(conclusion.next, Next::Failed(Some(Duration::from_secs(30))));
    assert_eq!(
        condition(&ks, RECONCILING).1,
        reason::PROGRESSING_WITH_RETRY
    );
    assert_eq!(ks.observed_generation(), None);
    assert_eq!(ks.last_handled_reconcile_at(), Some("t1"));

    let attempt = applied(REVISION, &["a"], HealthVerdict::NotChecked);
    let recorded = record(&mut ks, &attempt, Outcome::Success, now());
    conclude(&mut ks, &READY_RULE, &recorded.outcome);
    assert!(conditions::get(ks.conditions(), RECONCILING).is_none());
    assert_eq!(ks.observed_generation(), Some(2));
    assert_eq!(
        condition(&ks, READY),
        (
            "True",
            "ReconciliationSucceeded",
            "Applied revision: main@sha1:abc"
        )
    );
}

#[test]
fn stalled_clears_reconciling() {
    let mut ks = kustomization(1);
    mark_progressing(ks.conditions_mut(), &READY_RULE, "x", Some(1));
    conclude(
        &mut ks,
        &READY_RULE,
        &Outcome::stalled(reason::ACCESS_DENIED, "cross-namespace"),
    );
    assert!(conditions::get(ks.conditions(), RECONCILING).is_none());
    assert!(is_true(ks.conditions(), STALLED));
    assert!(is_false(ks.conditions(), READY));
}

#[test]
fn history_dedupes_and_caps() {
    let mut status = KustomizationStatus::default();
    let mut attempt = Attempt {
        elapsed: Duration::from_millis(10),
        ..Attempt::default()
    };
    for index in 0..7 {
        attempt.digest = Some(format!("sha256:{index}"));
        record_history(&mut status, &attempt, "ReconciliationSucceeded", now());
    }
    assert_eq!(status.history.len(), MAX_HISTORY_SIZE);
    attempt.digest = Some("sha256:6".into());
    record_history(&mut status, &attempt, "ReconciliationSucceeded", now());
    assert_eq!(status.history.len(), MAX_HISTORY_SIZE);
    assert_eq!(status.history[0].total_reconciliations, 2);
}

#[test]
fn health_passing_is_announced_when_it_was_not_or_a_new_revision_changed_objects() {
    let passed = || HealthVerdict::Passed {
        after: Duration::from_secs(2),
    };
    let reasons = |recorded: &Recorded| -> Vec<String> {
        recorded.notices.iter().map(|n| n.reason.clone()).collect()
    };
    let mut ks = kustomization(1);
    let first = record(
        &mut ks,
        &applied(REVISION, &["a"], passed()),
        Outcome::Success,
        now(),
    );
    assert_eq!(reasons(&first), ["Progressing", "ReconciliationSucceeded"]);
    conclude(&mut ks, &READY_RULE, &Outcome::Success);

    let mut unchanged = applied("main@sha1:fed", &["a"], passed());
    if let Some(change_set) = unchanged.change_set.as_mut() {
        change_set.changes[0].action = Action::Unchanged;
    }
    let quiet = record(&mut ks, &unchanged, Outcome::Success, now());
    assert_eq!(
        reasons(&quiet),
        ["ReconciliationSucceeded"],
        "a new revision that changed nothing: health stayed as it was"
    );
    let changed = record(
        &mut ks,
        &applied("main@sha1:0ab", &["a"], passed()),
        Outcome::Success,
        now(),
    );
    assert_eq!(
        reasons(&changed),
        ["Progressing", "ReconciliationSucceeded"]
    );
}
