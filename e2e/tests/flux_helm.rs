//! Flux's helm-controller (built from its pinned Go module) installs a HelmRelease whose chart
//! comes only from Sluice's source-controller: HelmRepository → HelmChart → artifact → release.

use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use sluice_e2e::ControlPlane;
use sluice_e2e::chart_repo::{
    ChartRepoOptions, ChartRepository, IndexEntry, chart_archive, index_yaml,
};
use sluice_e2e::flux::{FluxController, FluxProcess};
use sluice_e2e::gitops::{Controller, Controllers, Scope};
use sluice_e2e::poll::eventually;
use sluice_e2e::toolkit::dynamic_api;

/// Longest wait for the release: chart build, download, install and the Deployment's readiness.
const RELEASE_READY: Duration = Duration::from_secs(240);

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_helm_controller_installs_a_chart_served_by_sluice() {
    let plane = ControlPlane::shared_with_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let helm_crds = tokio::task::spawn_blocking(|| FluxController::Helm.crds_dir())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    plane
        .apply_crds_from(&helm_crds)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = plane.namespace("flux-helm").await.unwrap();
    let repository = ChartRepository::start(ChartRepoOptions::default())
        .await
        .unwrap();
    let chart = chart_archive(
        "web",
        "1.2.0",
        &[
            ("values.yaml", "replicas: 1\ngreeting: hello\n"),
            ("templates/deployment.yaml", DEPLOYMENT),
            ("templates/configmap.yaml", CONFIG_MAP),
        ],
    )
    .unwrap();
    repository.put("web-1.2.0.tgz", chart);
    repository.put(
        "index.yaml",
        index_yaml(&[IndexEntry {
            name: "web",
            version: "1.2.0",
            url: "web-1.2.0.tgz",
        }]),
    );

    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let (sluice_dir, flux_dir) = (
        plane.dir().join(format!("{ns}-sluice")),
        plane.dir().join(format!("{ns}-flux-helm")),
    );
    let scope = Scope::Namespace(ns.clone());
    let flux_ns = ns.clone();
    let (ours, flux) = tokio::task::spawn_blocking(move || {
        let ours = Controllers::start_with_args(
            &kubeconfig,
            &sluice_dir,
            scope,
            &[Controller::Source],
            &[],
        )?;
        let flux =
            FluxProcess::start(FluxController::Helm, &kubeconfig, &flux_dir, &flux_ns, None)?;
        Ok::<_, sluice_e2e::Error>((ours, flux))
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    let logs = || format!("{}\n{}", ours.log_tails(), flux.log_tail());

    let client = plane.client().await.unwrap();
    create(
        &dynamic_api(
            &client,
            &ns,
            "source.toolkit.fluxcd.io/v1",
            "HelmRepository",
        ),
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "charts"},
            "spec": {"url": repository.url(), "interval": "10m"},
        }),
    )
    .await;
    create(
        &dynamic_api(&client, &ns, "helm.toolkit.fluxcd.io/v2", "HelmRelease"),
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "web"},
            "spec": {
                "interval": "10m",
                "timeout": "3m",
                "chart": {"spec": {
                    "chart": "web",
                    "version": "1.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                    "interval": "10m",
                }},
                "values": {"greeting": "from-sluice", "replicas": 2},
            },
        }),
    )
    .await;

    let releases = dynamic_api(&client, &ns, "helm.toolkit.fluxcd.io/v2", "HelmRelease");
    let release = eventually(
        "HelmRelease web Ready",
        RELEASE_READY,
        Duration::from_secs(2),
        || async {
            let release = releases.get("web").await.map_err(|e| e.to_string())?;
            if ready(&release) {
                Ok(release)
            } else {
                Err(format!("status {}", release.data["status"]))
            }
        },
    )
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}\n{}", logs()));

    let history = &release.data["status"]["history"][0];
    assert_eq!(history["chartName"], "web", "{history}");
    assert_eq!(history["chartVersion"], "1.2.0", "{history}");
    let charts = dynamic_api(&client, &ns, "source.toolkit.fluxcd.io/v1", "HelmChart");
    let chart = charts
        .get(&format!("{ns}-web"))
        .await
        .unwrap_or_else(|e| panic!("the HelmChart helm-controller asked for: {e}\n{}", logs()));
    assert!(ready(&chart), "{}", chart.data["status"]);
    assert_eq!(chart.data["status"]["artifact"]["revision"], "1.2.0");
    let config_maps = dynamic_api(&client, &ns, "v1", "ConfigMap");
    let settings = config_maps.get("web-settings").await.unwrap();
    assert_eq!(settings.data["data"]["greeting"], "from-sluice");
    let deployments = dynamic_api(&client, &ns, "apps/v1", "Deployment");
    let web = deployments.get("web-web").await.unwrap();
    assert_eq!(web.data["spec"]["replicas"], 2);
}

async fn create(api: &Api<DynamicObject>, manifest: Value) {
    let object: DynamicObject = serde_json::from_value(manifest).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("creating {:?}: {e}", object.metadata.name));
}

/// Whether a Flux object's `Ready` condition is `True` for its current generation.
fn ready(object: &DynamicObject) -> bool {
    let status = &object.data["status"];
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
        && status["observedGeneration"].as_i64() == object.metadata.generation
}
