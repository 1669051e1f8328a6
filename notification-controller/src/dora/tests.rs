//! Scripted event sequences and the DORA metrics they produce.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

const T0: i64 = 1_700_000_000;

fn event(
    kind: &str,
    api_version: &str,
    name: &str,
    severity: EventSeverity,
    reason: &str,
    at: i64,
    metadata: &[(&str, &str)],
) -> NotificationEvent {
    NotificationEvent {
        involved_object: ObjectReference {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
            name: Some(name.to_owned()),
            namespace: Some("apps".to_owned()),
            ..ObjectReference::default()
        },
        severity,
        timestamp: Time(Timestamp::from_second(at).unwrap()),
        message: "message".to_owned(),
        reason: reason.to_owned(),
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        reporting_controller: "test".to_owned(),
        reporting_instance: String::new(),
    }
}

fn commit(revision: &str, committed: i64, announced: i64) -> NotificationEvent {
    let time = Timestamp::from_second(committed).unwrap().to_string();
    event(
        "GitRepository",
        "source.toolkit.fluxcd.io/v1",
        "repo",
        EventSeverity::Info,
        "NewArtifact",
        announced,
        &[
            ("source.toolkit.fluxcd.io/revision", revision),
            ("source.toolkit.fluxcd.io/commit_time", &time),
        ],
    )
}

fn ks(severity: EventSeverity, reason: &str, revision: &str, at: i64) -> NotificationEvent {
    event(
        "Kustomization",
        "kustomize.toolkit.fluxcd.io/v1",
        "web",
        severity,
        reason,
        at,
        &[("kustomize.toolkit.fluxcd.io/revision", revision)],
    )
}

fn metrics_text(dora: &DoraMetrics) -> String {
    let mut registry = Registry::default();
    dora.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

/// The value of `series` (name with labels) in the exposition, 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const LABELS: &str = r#"{namespace="apps",name="web"}"#;

fn series(metric: &str) -> String {
    format!("{metric}{LABELS}")
}

#[test]
fn good_and_failing_revisions_give_all_four_keys() {
    let dora = DoraMetrics::new();
    let script = [
        // r1 committed at T0, applied 120s later.
        commit("main@sha1:r1", T0, T0 + 30),
        ks(EventSeverity::Info, "Progressing", "main@sha1:r1", T0 + 100),
        ks(EventSeverity::Info, SUCCEEDED, "main@sha1:r1", T0 + 120),
        // The same revision again (e.g. a requeue) is not another deployment.
        ks(EventSeverity::Info, SUCCEEDED, "main@sha1:r1", T0 + 700),
        // r2 fails its health check twice, then r3 fixes it 600s after the first failure.
        commit("main@sha1:r2", T0 + 1000, T0 + 1010),
        ks(
            EventSeverity::Error,
            "HealthCheckFailed",
            "main@sha1:r2",
            T0 + 1100,
        ),
        ks(
            EventSeverity::Error,
            "HealthCheckFailed",
            "main@sha1:r2",
            T0 + 1400,
        ),
        commit("main@sha1:r3", T0 + 1500, T0 + 1510),
        ks(EventSeverity::Info, SUCCEEDED, "main@sha1:r3", T0 + 1700),
    ];
    for event in &script {
        dora.observe(event);
    }
    let text = metrics_text(&dora);
    assert_eq!(
        value(&text, &series("sluice_dora_deployments_total")),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(&text, &series("sluice_dora_deployment_attempts_total")),
        3.0
    );
    assert_eq!(
        value(&text, &series("sluice_dora_failed_deployments_total")),
        1.0
    );
    assert_eq!(
        value(&text, &series("sluice_dora_lead_time_seconds_count")),
        2.0
    );
    // 120s for r1, 200s for r3.
    assert_eq!(
        value(&text, &series("sluice_dora_lead_time_seconds_sum")),
        320.0
    );
    assert_eq!(
        value(&text, &series("sluice_dora_time_to_restore_seconds_count")),
        1.0
    );
    assert_eq!(
        value(&text, &series("sluice_dora_time_to_restore_seconds_sum")),
        600.0
    );
}

#[test]
fn recovery_with_the_same_revision_restores_without_a_new_deployment() {
    let dora = DoraMetrics::new();
    dora.observe(&ks(EventSeverity::Info, SUCCEEDED, "main@sha1:a", T0));
    dora.observe(&ks(
        EventSeverity::Error,
        "HealthCheckFailed",
        "main@sha1:a",
        T0 + 60,
    ));
    dora.observe(&ks(EventSeverity::Info, SUCCEEDED, "main@sha1:a", T0 + 360));
    let text = metrics_text(&dora);
    assert_eq!(value(&text, &series("sluice_dora_deployments_total")), 1.0);
    assert_eq!(
        value(&text, &series("sluice_dora_failed_deployments_total")),
        1.0
    );
    assert_eq!(
        value(&text, &series("sluice_dora_time_to_restore_seconds_sum")),
        300.0
    );
    // No commit time was announced: no lead time.
    assert_eq!(
        value(&text, &series("sluice_dora_lead_time_seconds_count")),
        0.0
    );
}

#[test]
fn other_kinds_and_groups_are_ignored() {
    let dora = DoraMetrics::new();
    let mut foreign = ks(EventSeverity::Info, SUCCEEDED, "main@sha1:a", T0);
    foreign.involved_object.api_version = Some("example.com/v1".to_owned());
    dora.observe(&foreign);
    dora.observe(&event(
        "HelmRelease",
        "helm.toolkit.fluxcd.io/v2",
        "web",
        EventSeverity::Error,
        "InstallFailed",
        T0,
        &[],
    ));
    let text = metrics_text(&dora);
    assert!(!text.contains("namespace=\"apps\""), "{text}");
}

#[test]
fn state_is_bounded() {
    let dora = DoraMetrics::new();
    for n in 0..(MAX_REVISIONS + 10) {
        dora.observe(&commit(&format!("main@sha1:{n}"), T0, T0));
    }
    for n in 0..(MAX_KUSTOMIZATIONS + 5) {
        let mut event = ks(EventSeverity::Info, SUCCEEDED, "main@sha1:a", T0);
        event.involved_object.name = Some(format!("ks-{n}"));
        dora.observe(&event);
    }
    let state = dora.state();
    assert_eq!(state.commit_times.len(), MAX_REVISIONS);
    assert_eq!(state.commit_order.len(), MAX_REVISIONS);
    assert_eq!(state.kustomizations.len(), MAX_KUSTOMIZATIONS);
    assert!(!state.kustomizations.contains_key(&DoraLabels {
        namespace: "apps".to_owned(),
        name: "ks-0".to_owned()
    }));
}
