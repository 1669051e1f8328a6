//! The flux CLI (v2.9) on Sluice's Receivers: `flux get receivers` shows them Ready with the
//! webhook path, `flux reconcile receiver` is handled, `flux suspend`/`resume receiver` work.

mod receiver_common;

use anyhow::Result;
use receiver_common::Harness;
use serde_json::json;
use sluice_e2e::ControlPlane;
use sluice_e2e::flux::flux_cli;

/// Runs the flux CLI off the runtime thread, so the in-process controller keeps running.
async fn flux(args: &[&str]) -> Result<String> {
    let kubeconfig = ControlPlane::shared().await?.kubeconfig_path().to_owned();
    let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        flux_cli(&kubeconfig, &args)
    })
    .await??;
    assert!(output.success, "flux {args:?}:\n{}", output.text());
    Ok(output.text())
}

#[tokio::test]
async fn flux_cli_gets_reconciles_suspends_and_resumes_receivers() -> Result<()> {
    let harness = Harness::start("recv-flux-cli").await?;
    harness.secret("token", &[("token", "cli-token")]).await?;
    let path = harness
        .receiver(
            "github-receiver",
            json!({
                "type": "github",
                "secretRef": {"name": "token"},
                "resources": [{"kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;
    let ns = harness.namespace.as_str();
    let listed = flux(&["get", "receivers", "-n", ns]).await?;
    assert!(listed.contains("github-receiver"), "{listed}");
    let row = |text: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with("github-receiver"))
            .unwrap_or_default();
        line.split('\t')
            .map(|cell| cell.trim().to_owned())
            .collect()
    };
    assert_eq!(
        row(&listed)[1..3],
        ["False", "True"],
        "SUSPENDED, READY:\n{listed}"
    );
    assert!(
        listed.contains(&format!("Receiver initialized for path: {path}")),
        "{listed}"
    );
    let reconciled = flux(&["reconcile", "receiver", "github-receiver", "-n", ns]).await?;
    assert!(
        reconciled.contains("Receiver reconciliation completed"),
        "{reconciled}"
    );
    flux(&["suspend", "receiver", "github-receiver", "-n", ns]).await?;
    let suspended = flux(&["get", "receivers", "-n", ns]).await?;
    assert_eq!(row(&suspended)[1], "True", "SUSPENDED:\n{suspended}");
    flux(&["resume", "receiver", "github-receiver", "-n", ns]).await?;
    Ok(())
}
