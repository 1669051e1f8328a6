//! Health checks against Deployments made Available (or not) by kube-controller-manager and kwok.

mod common;

use common::{Harness, condition};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sluice_e2e::ControlPlane;

fn deployment(name: &str, extra_pod_spec: &str, progress_deadline: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  progressDeadlineSeconds: {progress_deadline}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
{extra_pod_spec}      containers:
        - name: app
          image: ghcr.io/stefanprodan/podinfo:6.9.0
"#
    )
}

async fn harness(prefix: &str) -> Harness {
    let plane = ControlPlane::shared_with_nodes().await.unwrap();
    Harness::start_on(plane, prefix, &[]).await
}

#[tokio::test]
async fn wait_passes_when_the_deployment_is_available() {
    let h = harness("health-pass").await;
    h.publish(
        "repo",
        "v1",
        &[("deploy.yaml", &deployment("web", "", 600))],
    )
    .await;
    h.kustomization("app", "repo", json!({"wait": true, "timeout": "2m"}))
        .await;
    let ks = h.wait_ready("app", "repo").await;
    let healthy = condition(&ks, "Healthy").unwrap();
    assert_eq!(healthy.status, "True");
    assert!(
        healthy.message.starts_with("Health check passed"),
        "{}",
        healthy.message
    );
}

#[tokio::test]
async fn health_check_fails_fast_naming_the_failed_deployment() {
    let h = harness("health-fail").await;
    let unschedulable = "      nodeSelector: {sluice.test/none: \"true\"}\n";
    h.publish(
        "repo",
        "v1",
        &[("deploy.yaml", &deployment("stuck", unschedulable, 1))],
    )
    .await;
    h.kustomization("app", "repo", json!({"wait": true, "timeout": "5m"}))
        .await;
    let ks = h.wait_failed("app", "HealthCheckFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(
        message.contains(&format!("Deployment/{}/stuck", h.ns)),
        "{message}"
    );
    assert!(message.contains("progress deadline"), "{message}");
    assert_eq!(condition(&ks, "Healthy").unwrap().status, "False");
}

#[tokio::test]
async fn health_check_times_out_with_the_pending_object() {
    let h = harness("health-timeout").await;
    let unschedulable = "      nodeSelector: {sluice.test/none: \"true\"}\n";
    h.publish(
        "repo",
        "v1",
        &[("deploy.yaml", &deployment("pending", unschedulable, 600))],
    )
    .await;
    h.kustomization(
        "app",
        "repo",
        json!({"timeout": "30s", "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "pending"}]}),
    )
    .await;
    let ks = h.wait_failed("app", "HealthCheckFailed").await;
    let message = &condition(&ks, "Ready").unwrap().message;
    assert!(message.contains("timeout waiting for"), "{message}");
    assert!(
        message.contains(&format!("Deployment/{}/pending", h.ns)),
        "{message}"
    );
}

/// With polling effectively off, Ready must come from the Deployment's own status change; and
/// kube-controller-manager's later writes (its revision annotation, status) are not drift.
#[tokio::test]
async fn ready_follows_the_deployment_settling_without_false_drift() {
    let plane = ControlPlane::shared_with_nodes().await.unwrap();
    let h = Harness::start_on(plane, "health-event", &["--health-check-interval=1h"]).await;
    h.publish(
        "repo",
        "v1",
        &[("deploy.yaml", &deployment("web", "", 600))],
    )
    .await;
    h.kustomization("app", "repo", json!({"wait": true, "timeout": "2m"}))
        .await;
    h.wait_ready("app", "repo").await;
    let deployments: Api<Deployment> = h.api();
    let annotations = deployments.get("web").await.unwrap().metadata.annotations;
    assert!(
        annotations.is_some_and(|a| a.contains_key("deployment.kubernetes.io/revision")),
        "kube-controller-manager wrote the Deployment after our apply"
    );
    let reconciles = h.reconciles("app");
    // Each status write of the Deployment while health is pending triggers one re-check;
    // kube-controller-manager may settle it in one write or two (progressing, then available).
    assert!(
        reconciles <= 3,
        "one apply, then a re-check per Deployment status write until it settled; got {reconciles}"
    );
    eprintln!("reconciles until Ready: {reconciles}");
    assert_eq!(
        h.step_runs("apply"),
        1,
        "the re-check of pending health applies nothing"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        h.reconciles("app"),
        reconciles,
        "writes by other controllers to fields we do not own trigger nothing"
    );
}

/// A re-check of pending health applies nothing, but an out-of-band change to the object it
/// waits for is still put back at once.
#[tokio::test]
async fn drift_during_a_pending_health_wait_is_corrected() {
    let plane = ControlPlane::shared_with_nodes().await.unwrap();
    let h = Harness::start_on(plane, "health-drift", &["--health-check-interval=1s"]).await;
    let unschedulable = "      nodeSelector: {sluice.test/none: \"true\"}\n";
    h.publish(
        "repo",
        "v1",
        &[("deploy.yaml", &deployment("pending", unschedulable, 600))],
    )
    .await;
    h.kustomization("app", "repo", json!({"wait": true, "timeout": "5m"}))
        .await;
    h.eventually("health is re-checked without a second apply", || async {
        h.reconciles("app") >= 3
    })
    .await;
    assert_eq!(h.step_runs("apply"), 1, "re-checks applied again");
    let deployments: Api<Deployment> = h.api();
    let intruder = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "pending"}, "spec": {"replicas": 3}});
    deployments
        .patch(
            "pending",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&intruder),
        )
        .await
        .unwrap();
    h.eventually("the drifted replicas are put back", || async {
        let live = deployments.get("pending").await.unwrap();
        live.spec.and_then(|spec| spec.replicas) == Some(1)
    })
    .await;
    assert_eq!(h.step_runs("apply"), 2, "the drift was applied over once");
}
