//! The same OCI chart and the same chart with dependencies, built by Sluice and by Flux's own
//! source-controller (Helm's SDK inside) from the same registry, chart repository and git
//! server: the OCI chart is the same bytes at the same revision, and the packaged chart carries
//! the same dependencies at the same versions.

mod common;
mod helm_support;

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use common::{Harness, has};
use helm_support::{archive_files, create_in, push_chart};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use sluice_api::FluxObject;
use sluice_api::meta::Artifact;
use sluice_api::source::{GitRepository, HelmChart, HelmRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::chart_repo::{
    ChartRepoOptions, ChartRepository, IndexEntry, chart_archive, index_yaml,
};
use sluice_e2e::flux::{FluxController, FluxProcess};
use sluice_e2e::git::GitServer;
use sluice_e2e::poll::wait_object;
use sluice_e2e::registry::Registry;

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

/// The servers both controllers read from.
struct Upstreams {
    registry: Registry,
    private: ChartRepository,
    git: GitServer,
}

async fn upstreams() -> Result<Upstreams> {
    let registry = Registry::builder().basic_auth("helm", "s3cret").start()?;
    let client = registry.client()?;
    for (name, version) in [("app", "1.0.0"), ("app", "1.1.0"), ("db", "2.0.0")] {
        let archive = chart_archive(name, version, &[("templates/cm.yaml", TEMPLATE)])?;
        push_chart(&client, "charts", name, version, &archive).await?;
    }
    let private = ChartRepository::start(ChartRepoOptions {
        basic_auth: Some(("helm", "s3cret")),
        ..ChartRepoOptions::default()
    })
    .await?;
    for version in ["1.0.0", "1.2.0"] {
        let archive = chart_archive("redis", version, &[("templates/cm.yaml", TEMPLATE)])?;
        private.put(&format!("redis-{version}.tgz"), archive);
    }
    let url_of = |version: &str| format!("redis-{version}.tgz");
    let (first, second) = (url_of("1.0.0"), url_of("1.2.0"));
    private.put(
        "index.yaml",
        index_yaml(&[
            IndexEntry {
                name: "redis",
                version: "1.0.0",
                url: &first,
            },
            IndexEntry {
                name: "redis",
                version: "1.2.0",
                url: &second,
            },
        ]),
    );
    let metadata = format!(
        "apiVersion: v2\nname: web\nversion: 0.3.0\ndependencies:\n\
         - name: redis\n  version: 1.x\n  repository: {}\n\
         - name: db\n  version: '>=2.0.0'\n  repository: {}\n\
         - name: common\n  version: ~0.5\n  repository: file://../common\n",
        private.url(),
        registry.oci_url("charts"),
    );
    let git = GitServer::builder().start()?;
    git.create_repo("charts")?;
    git.commit(
        "charts",
        "main",
        [
            ("web/Chart.yaml", metadata.as_str()),
            ("web/templates/cm.yaml", TEMPLATE),
            (
                "common/Chart.yaml",
                "apiVersion: v2\nname: common\nversion: 0.5.2\n",
            ),
            ("common/templates/cm.yaml", TEMPLATE),
        ],
        "chart with dependencies",
    )?;
    Ok(Upstreams {
        registry,
        private,
        git,
    })
}

/// Creates the Secret, repositories and charts in `namespace`.
async fn declare(client: &Client, namespace: &str, up: &Upstreams) -> Result<()> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "login"},
        "stringData": {"username": "helm", "password": "s3cret"},
    }))?;
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    let login = json!({"name": "login"});
    let spec = json!({"url": up.private.url(), "interval": "1h", "secretRef": login});
    create_in::<HelmRepository>(client, namespace, "HelmRepository", "private", spec).await?;
    let spec = json!({"type": "oci", "url": up.registry.oci_url("charts"), "insecure": true, "secretRef": login});
    create_in::<HelmRepository>(client, namespace, "HelmRepository", "registry", spec).await?;
    let spec =
        json!({"url": up.git.http_url("charts"), "interval": "1h", "ref": {"branch": "main"}});
    create_in::<GitRepository>(client, namespace, "GitRepository", "charts", spec).await?;
    let spec = json!({"chart": "app", "version": "1.x", "interval": "1h", "sourceRef": {"kind": "HelmRepository", "name": "registry"}});
    create_in::<HelmChart>(client, namespace, "HelmChart", "app", spec).await?;
    let spec = json!({"chart": "web", "interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "charts"}});
    create_in::<HelmChart>(client, namespace, "HelmChart", "web", spec).await?;
    Ok(())
}

async fn ready_artifact(
    client: &Client,
    namespace: &str,
    name: &str,
    reason: &'static str,
) -> Result<Artifact> {
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), namespace);
    let ready = wait_object(&charts, name, "Ready", |c| {
        has(c.conditions(), "Ready", "True", reason)
    })
    .await?;
    ready
        .status
        .and_then(|s| s.artifact)
        .context("status.artifact")
}

/// `(name, version)` of every dependency in a packaged chart, archived or as a directory.
fn dependencies(archive: &[u8], chart: &str) -> Result<BTreeSet<(String, String)>> {
    let files = archive_files(archive)?;
    let prefix = format!("{chart}/charts/");
    let mut found = BTreeSet::new();
    for (path, bytes) in &files {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let metadata = if rest.ends_with(".tgz") {
            let inner = archive_files(bytes)?;
            let (_, chart_yaml) = inner
                .iter()
                .find(|(p, _)| p.matches('/').count() == 1 && p.ends_with("/Chart.yaml"))
                .context("a dependency archive has a Chart.yaml")?;
            chart_yaml.clone()
        } else if rest.matches('/').count() == 1 && rest.ends_with("/Chart.yaml") {
            bytes.clone()
        } else {
            continue;
        };
        let value: serde_json::Value = serde_saphyr::from_str(std::str::from_utf8(&metadata)?)?;
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        found.insert((text("name"), text("version")));
    }
    Ok(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_and_sluice_build_the_same_oci_chart_and_dependencies() -> Result<()> {
    let harness = Harness::start("helmchart-parity").await?;
    let up = upstreams().await?;
    declare(&harness.client, &harness.namespace, &up).await?;

    let plane = ControlPlane::shared().await?;
    let (flux_namespace, flux) =
        FluxProcess::start_in_new_namespace(plane, FluxController::Source, "flux-parity").await?;
    declare(&harness.client, &flux_namespace, &up).await?;

    let client = &harness.client;
    let ours = ready_artifact(client, &harness.namespace, "app", "ChartPullSucceeded").await?;
    let theirs = ready_artifact(client, &flux_namespace, "app", "ChartPullSucceeded")
        .await
        .with_context(|| flux.log_tail())?;
    assert_eq!(ours.revision, "1.1.0");
    assert_eq!(ours.revision, theirs.revision);
    assert_eq!(
        ours.digest, theirs.digest,
        "both store the chart layer as pulled"
    );

    let ours = ready_artifact(client, &harness.namespace, "web", "ChartPackageSucceeded").await?;
    let theirs = ready_artifact(client, &flux_namespace, "web", "ChartPackageSucceeded")
        .await
        .with_context(|| flux.log_tail())?;
    assert_eq!(ours.revision, theirs.revision);
    let our_bytes = harness.download(&ours.url).await?.bytes().await?;
    let their_bytes = harness.download(&theirs.url).await?.bytes().await?;
    let expected: BTreeSet<(String, String)> =
        [("common", "0.5.2"), ("db", "2.0.0"), ("redis", "1.2.0")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(dependencies(&our_bytes, "web")?, expected);
    assert_eq!(
        dependencies(&their_bytes, "web")?,
        expected,
        "Flux resolves the same versions"
    );
    flux.stop();
    harness.stop().await;
    Ok(())
}
