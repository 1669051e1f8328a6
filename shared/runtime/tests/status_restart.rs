//! A status write outlasts a kube-apiserver restart. Its own test binary: it restarts the
//! apiserver of a control plane no other test uses.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_e2e::{ControlPlane, Mode};
use sluice_runtime::apply_status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_waits_out_an_apiserver_restart() -> Result<()> {
    let plane = ControlPlane::start(Mode::ApiOnly).await?;
    let services: Api<Service> = Api::namespaced(plane.client().await?, "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))?;
    services.create(&PostParams::default(), &service).await?;
    let status = json!({"loadBalancer": {"ingress": [{"hostname": "web.example"}]}});

    let restart = plane.restart_apiserver(Duration::from_secs(2));
    let write = async {
        // The apiserver is down by then: the first attempts cannot connect.
        tokio::time::sleep(Duration::from_millis(500)).await;
        apply_status(&services, "web", "sluice-status-test", &status).await
    };
    let (restarted, written) = tokio::join!(restart, write);
    restarted?;
    let stored = written?;
    let hostname = stored
        .status
        .and_then(|status| status.load_balancer)
        .and_then(|balancer| balancer.ingress)
        .and_then(|ingress| ingress.into_iter().next())
        .and_then(|ingress| ingress.hostname);
    assert_eq!(hostname.as_deref(), Some("web.example"));
    Ok(())
}
