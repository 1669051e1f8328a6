//! A chart packaged by Sluice is a chart Helm accepts: Flux's own source-controller (Helm's SDK
//! inside) pulls it from a chart repository, loads it, merges values into it and repackages it.

mod common;

use anyhow::{Context, Result};
use common::{Harness, git_ready, has};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_api::FluxObject;
use sluice_api::source::{HelmChart, HelmRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::chart_repo::{ChartRepoOptions, ChartRepository, IndexEntry, index_yaml};
use sluice_e2e::flux::{FluxController, FluxProcess};
use sluice_e2e::git::GitServer;
use sluice_e2e::poll::wait_object;

const CHART_YAML: &str = "apiVersion: v2\nname: web\ndescription: A web app\nversion: 0.3.0\nappVersion: \"1.2\"\ntype: application\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n";

/// Builds `web` from Git with Sluice (values merged, revision metadata) and returns its archive
/// and version.
async fn sluice_packaged_chart(harness: &Harness) -> Result<(Vec<u8>, String)> {
    let server = GitServer::builder().start()?;
    server.create_repo("charts")?;
    server.commit(
        "charts",
        "main",
        [
            ("web/Chart.yaml", CHART_YAML),
            ("web/values.yaml", "replicas: 1\n"),
            ("web/templates/deployment.yaml", DEPLOYMENT),
            ("web/templates/NOTES.txt", "Installed {{ .Release.Name }}\n"),
            ("prod.yaml", "replicas: 3\n"),
        ],
        "chart",
    )?;
    let spec =
        json!({"url": server.http_url("charts"), "interval": "1h", "ref": {"branch": "main"}});
    harness.create_git("charts", spec).await?;
    harness.wait_git("charts", "Ready", git_ready).await?;
    let chart: HelmChart = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
        "metadata": {"name": "web"},
        "spec": {
            "chart": "web", "interval": "1h", "reconcileStrategy": "Revision",
            "valuesFiles": ["web/values.yaml", "prod.yaml"],
            "sourceRef": {"kind": "GitRepository", "name": "charts"},
        },
    }))?;
    let charts: Api<HelmChart> = Api::namespaced(harness.client.clone(), &harness.namespace);
    charts.create(&PostParams::default(), &chart).await?;
    let ready = wait_object(&charts, "web", "Ready", |c| {
        has(c.conditions(), "Ready", "True", "ChartPackageSucceeded")
    })
    .await?;
    let artifact = ready
        .status
        .and_then(|s| s.artifact)
        .context("status.artifact")?;
    let bytes = harness.download(&artifact.url).await?.bytes().await?;
    Ok((bytes.to_vec(), artifact.revision))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_source_controller_loads_and_repackages_a_sluice_chart() -> Result<()> {
    let harness = Harness::start("helmchart-flux").await?;
    let (archive, version) = sluice_packaged_chart(&harness).await?;
    let repo = ChartRepository::start(ChartRepoOptions::default()).await?;
    repo.put("web.tgz", archive);
    let entry = IndexEntry {
        name: "web",
        version: &version,
        url: "web.tgz",
    };
    repo.put("index.yaml", index_yaml(&[entry]));

    let plane = ControlPlane::shared().await?;
    let (namespace, flux) =
        FluxProcess::start_in_new_namespace(plane, FluxController::Source, "flux-loads").await?;
    let repositories: Api<HelmRepository> = Api::namespaced(harness.client.clone(), &namespace);
    let repository: HelmRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
        "metadata": {"name": "sluice"},
        "spec": {"url": repo.url(), "interval": "1h"},
    }))?;
    repositories
        .create(&PostParams::default(), &repository)
        .await?;
    let charts: Api<HelmChart> = Api::namespaced(harness.client.clone(), &namespace);
    let chart: HelmChart = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
        "metadata": {"name": "web"},
        "spec": {
            "chart": "web", "version": version, "interval": "1h", "valuesFiles": ["values.yaml", "values.yaml"],
            "sourceRef": {"kind": "HelmRepository", "name": "sluice"},
        },
    }))?;
    charts.create(&PostParams::default(), &chart).await?;
    let loaded = wait_object(&charts, "web", "Ready from Flux's source-controller", |c| {
        has(c.conditions(), "Ready", "True", "ChartPackageSucceeded")
    })
    .await
    .with_context(|| flux.log_tail())?;
    let revision = loaded.status.and_then(|s| s.artifact).map(|a| a.revision);
    assert_eq!(
        revision.as_deref(),
        Some("0.3.0+1"),
        "Helm read our Chart.yaml"
    );
    flux.stop();
    harness.stop().await;
    Ok(())
}
