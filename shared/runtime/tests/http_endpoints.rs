//! The /metrics and /healthz, /readyz endpoints served over loopback.

use std::time::Duration;

use sluice_runtime::conditions::ConditionStatus;
use sluice_runtime::server::{bind, serve};
use sluice_runtime::{Metrics, ObjectLabels, Readiness, ReconcileResult, probes_router};
use tokio_util::sync::CancellationToken;

async fn spawn(
    router: axum::Router,
    shutdown: &CancellationToken,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = bind("test", "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        serve("test", listener, router, shutdown)
            .await
            .expect("serves")
    });
    (format!("http://{address}"), task)
}

#[tokio::test]
async fn metrics_endpoint_serves_gotk_families() {
    let metrics = Metrics::new();
    let object = ObjectLabels::new("GitRepository", "flux-system", "podinfo");
    metrics.record_duration(&object, Duration::from_millis(250));
    metrics.record_condition(&object, "Ready", ConditionStatus::True);
    metrics.record_suspend(&object, false);
    metrics.register_controller("gitrepository");
    metrics.record_reconcile("gitrepository", ReconcileResult::Success);

    let shutdown = CancellationToken::new();
    let (base, server) = spawn(metrics.router(), &shutdown).await;
    let response = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    for family in [
        "# TYPE gotk_reconcile_duration_seconds histogram",
        "# TYPE gotk_reconcile_condition gauge",
        "# TYPE gotk_suspend_status gauge",
        "# TYPE controller_runtime_reconcile counter",
        "# TYPE controller_runtime_reconcile_errors counter",
    ] {
        assert!(text.contains(family), "missing {family:?} in:\n{text}");
    }
    assert!(text.contains(
        "gotk_reconcile_condition{kind=\"GitRepository\",name=\"podinfo\",namespace=\"flux-system\",type=\"Ready\",status=\"True\"} 1"
    ));
    assert!(text.contains(
        "controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"success\"} 1"
    ));

    shutdown.cancel();
    server.await.expect("server stops on shutdown");
}

#[tokio::test]
async fn readiness_flips_when_gates_open() {
    let readiness = Readiness::new();
    let shutdown = CancellationToken::new();
    let (base, server) = spawn(probes_router(readiness.clone()), &shutdown).await;
    let get = |path: &str| reqwest::get(format!("{base}{path}"));

    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 503);
    let gate = readiness.gate("gitrepository");
    let waiting = get("/readyz").await.expect("readyz");
    assert_eq!(waiting.status(), 503);
    assert!(
        waiting
            .text()
            .await
            .expect("body")
            .contains("gitrepository")
    );
    gate.set(true);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);

    shutdown.cancel();
    server.await.expect("server stops on shutdown");
}
