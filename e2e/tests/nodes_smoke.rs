//! Nodes mode: kube-controller-manager, kube-scheduler and kwok make a Deployment Available.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::json;
use sluice_e2e::ControlPlane;
use sluice_e2e::cluster::FAKE_NODE;

#[tokio::test]
async fn a_deployment_becomes_available_on_the_fake_node() {
    let plane = ControlPlane::shared_with_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = plane.namespace("nodes").await.unwrap();
    let client = plane.client().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {"containers": [{"name": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.9.0"}]}
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let available = await_condition(deployments.clone(), "podinfo", |d: Option<&Deployment>| {
        let conditions = d
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref());
        conditions.is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        }) && d
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.available_replicas)
            == Some(2)
    });
    tokio::time::timeout(Duration::from_secs(120), available)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "Deployment did not become Available; logs in {}",
                plane.dir().display()
            )
        })
        .unwrap();

    let status = deployments.get("podinfo").await.unwrap().status.unwrap();
    assert_eq!(status.available_replicas, Some(2));
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let pods = pods
        .list(&ListParams::default().labels("app=podinfo"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2);
    for pod in pods.items {
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some(FAKE_NODE));
        assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    }
}
