//! HelmChart end to end: charts from a real chart repository (a static file server on loopback),
//! and chart directories in a GitRepository served by the e2e git server.

mod common;
mod helm_support;

use std::collections::BTreeMap;

use anyhow::Result;
use common::{Harness, condition, git_ready, has};
use helm_support::{archive_files, artifact, artifact_bytes, conditions, create, ready_with, wait};
use kube::Api;
use serde_json::{Value, json};
use sluice_api::meta::Artifact;
use sluice_api::source::{HelmChart, HelmRepository};
use sluice_e2e::chart_repo::{
    ChartRepoOptions, ChartRepository, IndexEntry, chart_archive, index_yaml,
};
use sluice_e2e::git::GitServer;

/// Downloads a chart artifact, checks its digest and returns its files (path → text).
async fn chart_files(harness: &Harness, artifact: &Artifact) -> Result<BTreeMap<String, String>> {
    let bytes = artifact_bytes(harness, artifact).await?;
    Ok(archive_files(&bytes)?
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect())
}

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

/// A repository with `app` 1.0.0, 1.1.0 and 2.0.0-rc.1, each with two values files.
async fn repository(options: ChartRepoOptions<'_>) -> Result<(ChartRepository, Vec<u8>)> {
    let repo = ChartRepository::start(options).await?;
    let mut chosen = Vec::new();
    for version in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
        let archive = chart_archive(
            "app",
            version,
            &[
                (
                    "values.yaml",
                    "replicas: 1\nimage:\n  tag: default\n  pull: Always\n",
                ),
                ("values-prod.yaml", "image:\n  tag: prod\n"),
                ("templates/cm.yaml", TEMPLATE),
            ],
        )?;
        if version == "1.1.0" {
            chosen = archive.clone();
        }
        repo.put(&format!("charts/app-{version}.tgz"), archive);
    }
    repo.put(
        "index.yaml",
        index_yaml(&[
            IndexEntry {
                name: "app",
                version: "1.0.0",
                url: "charts/app-1.0.0.tgz",
            },
            IndexEntry {
                name: "app",
                version: "2.0.0-rc.1",
                url: "charts/app-2.0.0-rc.1.tgz",
            },
            IndexEntry {
                name: "app",
                version: "1.1.0",
                url: "charts/app-1.1.0.tgz",
            },
        ]),
    );
    Ok((repo, chosen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_from_repository_selects_the_range_and_merges_values_files() -> Result<()> {
    let harness = Harness::start("helmchart-repo").await?;
    let (repo, chosen) = repository(ChartRepoOptions::default()).await?;
    create::<HelmRepository>(
        &harness,
        "HelmRepository",
        "repo",
        json!({"url": repo.url(), "interval": "1h"}),
    )
    .await?;
    let source_ref = json!({"kind": "HelmRepository", "name": "repo"});
    let spec = json!({"chart": "app", "version": ">=1.0.0 <2.0.0", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "pulled", spec).await?;
    let pulled = wait(
        &harness,
        "pulled",
        "Ready",
        ready_with("ChartPullSucceeded"),
    )
    .await?;
    let stored = artifact(&pulled)?;
    assert_eq!(stored.revision, "1.1.0");
    let message = &condition(conditions(&pulled), "Ready").unwrap().message;
    assert_eq!(message, "pulled 'app' chart with version '1.1.0'");
    let bytes = harness.download(&stored.url).await?.bytes().await?;
    assert_eq!(
        bytes.as_ref(),
        chosen.as_slice(),
        "an unmodified chart is stored as pulled"
    );
    let status = pulled.status.clone().unwrap_or_default();
    assert_eq!(status.observed_chart_name.as_deref(), Some("app"));
    assert!(
        status
            .observed_source_artifact_revision
            .is_some_and(|r| r.starts_with("sha256:"))
    );

    let spec = json!({
        "chart": "app", "sourceRef": source_ref, "interval": "1h",
        "valuesFiles": ["values.yaml", "missing.yaml", "values-prod.yaml"],
        "ignoreMissingValuesFiles": true,
    });
    create::<HelmChart>(&harness, "HelmChart", "merged", spec).await?;
    let merged = wait(
        &harness,
        "merged",
        "Ready",
        ready_with("ChartPackageSucceeded"),
    )
    .await?;
    let stored = artifact(&merged)?;
    assert_eq!(
        stored.revision, "1.1.0+1",
        "values files add the generation as metadata"
    );
    let files = chart_files(&harness, &stored).await?;
    let chart_yaml: Value = serde_saphyr::from_str(&files["app/Chart.yaml"])?;
    assert_eq!(chart_yaml["version"], "1.1.0+1");
    let values: Value = serde_saphyr::from_str(&files["app/values.yaml"])?;
    assert_eq!(
        values,
        json!({"replicas": 1, "image": {"tag": "prod", "pull": "Always"}})
    );
    assert_eq!(files["app/templates/cm.yaml"], TEMPLATE);
    let observed = merged
        .status
        .clone()
        .unwrap_or_default()
        .observed_values_files;
    assert_eq!(observed, ["values.yaml", "values-prod.yaml"]);

    let spec = json!({"chart": "app", "sourceRef": source_ref, "interval": "1h", "valuesFiles": ["values.yaml"]});
    create::<HelmChart>(&harness, "HelmChart", "default-values", spec).await?;
    let plain = wait(
        &harness,
        "default-values",
        "Ready",
        ready_with("ChartPullSucceeded"),
    )
    .await?;
    assert_eq!(
        artifact(&plain)?.revision,
        "1.1.0",
        "[values.yaml] alone is no values files"
    );

    let spec = json!({"chart": "app", "sourceRef": source_ref, "interval": "1h", "valuesFiles": ["missing.yaml"]});
    create::<HelmChart>(&harness, "HelmChart", "strict", spec).await?;
    let stalled = wait(&harness, "strict", "Stalled", |o| {
        has(conditions(o), "Stalled", "True", "ValuesFilesError")
    })
    .await?;
    let message = &condition(conditions(&stalled), "Ready").unwrap().message;
    assert!(message.contains("missing.yaml"), "{message}");

    let spec = json!({"chart": "absent", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "absent", spec).await?;
    wait(&harness, "absent", "InvalidChartReference", |o| {
        has(conditions(o), "Ready", "False", "InvalidChartReference")
    })
    .await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reach_other_hosts_only_with_pass_credentials() -> Result<()> {
    let harness = Harness::start("helmchart-pass").await?;
    let options = ChartRepoOptions {
        basic_auth: Some(("helm", "s3cret")),
        ..ChartRepoOptions::default()
    };
    let (repo, _) = repository(options).await?;
    let cdn = ChartRepository::start(ChartRepoOptions::default()).await?;
    cdn.put(
        "app-1.1.0.tgz",
        chart_archive("app", "1.1.0", &[("templates/cm.yaml", TEMPLATE)])?,
    );
    let absolute = format!("{}/app-1.1.0.tgz", cdn.url());
    repo.put(
        "index.yaml",
        index_yaml(&[IndexEntry {
            name: "app",
            version: "1.1.0",
            url: &absolute,
        }]),
    );
    harness
        .create_secret("helm-auth", &[("username", "helm"), ("password", "s3cret")])
        .await?;
    for (name, pass) in [("strict", false), ("passing", true)] {
        let spec = json!({"url": repo.url(), "interval": "1h", "secretRef": {"name": "helm-auth"}, "passCredentials": pass});
        create::<HelmRepository>(&harness, "HelmRepository", name, spec).await?;
        let spec = json!({"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": name}, "interval": "1h"});
        create::<HelmChart>(&harness, "HelmChart", name, spec).await?;
        wait(&harness, name, "Ready", ready_with("ChartPullSucceeded")).await?;
        let authorized: Vec<bool> = cdn.requests().iter().map(|r| r.authorized).collect();
        assert_eq!(authorized.last(), Some(&pass), "{name}: {authorized:?}");
    }
    assert!(repo.requests().iter().all(|r| r.authorized));
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_directory_from_git_is_packaged_with_the_revision_strategy() -> Result<()> {
    let harness = Harness::start("helmchart-git").await?;
    let server = GitServer::builder().start()?;
    server.create_repo("charts")?;
    let commit = server.commit(
        "charts",
        "main",
        [
            (
                "charts/web/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 0.3.0\n",
            ),
            ("charts/web/values.yaml", "port: 80\n"),
            ("charts/web/templates/cm.yaml", TEMPLATE),
            ("env/prod.yaml", "port: 8080\n"),
        ],
        "chart",
    )?;
    harness
        .create_git(
            "charts",
            json!({"url": server.http_url("charts"), "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    harness.wait_git("charts", "Ready", git_ready).await?;
    let source_ref = json!({"kind": "GitRepository", "name": "charts"});
    let spec = json!({"chart": "charts/web", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "web", spec).await?;
    let web = wait(
        &harness,
        "web",
        "Ready",
        ready_with("ChartPackageSucceeded"),
    )
    .await?;
    let stored = artifact(&web)?;
    assert_eq!(stored.revision, "0.3.0");
    let files = chart_files(&harness, &stored).await?;
    assert_eq!(files["web/values.yaml"], "port: 80\n");
    assert!(files.contains_key("web/templates/cm.yaml"), "{files:?}");

    let spec = json!({
        "chart": "./charts/web", "sourceRef": source_ref, "interval": "1h",
        "reconcileStrategy": "Revision", "valuesFiles": ["env/prod.yaml"],
    });
    create::<HelmChart>(&harness, "HelmChart", "web-rev", spec).await?;
    let web = wait(
        &harness,
        "web-rev",
        "Ready",
        ready_with("ChartPackageSucceeded"),
    )
    .await?;
    let stored = artifact(&web)?;
    assert_eq!(stored.revision, format!("0.3.0+{}.1", &commit[..12]));
    let files = chart_files(&harness, &stored).await?;
    let values: Value = serde_saphyr::from_str(&files["web/values.yaml"])?;
    assert_eq!(values, json!({"port": 8080}));

    let spec = json!({"chart": "charts/none", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "none", spec).await?;
    wait(&harness, "none", "Ready=False", |o| {
        has(conditions(o), "Ready", "False", "InvalidChartReference")
    })
    .await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_index_revision_rebuilds_charts_at_once() -> Result<()> {
    let harness = Harness::start("helmchart-trigger").await?;
    let repo = ChartRepository::start(ChartRepoOptions::default()).await?;
    let publish = |versions: &[&str]| -> Result<()> {
        let mut entries = Vec::new();
        for version in versions {
            let archive = chart_archive("app", version, &[("templates/cm.yaml", TEMPLATE)])?;
            repo.put(&format!("app-{version}.tgz"), archive);
            entries.push(format!("app-{version}.tgz"));
        }
        let listed: Vec<IndexEntry<'_>> = versions
            .iter()
            .zip(&entries)
            .map(|(version, url)| IndexEntry {
                name: "app",
                version,
                url,
            })
            .collect();
        repo.put("index.yaml", index_yaml(&listed));
        Ok(())
    };
    publish(&["1.0.0"])?;
    let spec = json!({"url": repo.url(), "interval": "1h"});
    create::<HelmRepository>(&harness, "HelmRepository", "repo", spec).await?;
    let spec = json!({"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": "repo"}, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "app", spec).await?;
    let first = wait(&harness, "app", "Ready", ready_with("ChartPullSucceeded")).await?;
    assert_eq!(artifact(&first)?.revision, "1.0.0");

    publish(&["1.0.0", "1.1.0"])?;
    let repositories: Api<HelmRepository> =
        Api::namespaced(harness.client.clone(), &harness.namespace);
    sluice_e2e::poll::request_reconcile(&repositories, "repo", "new-index").await?;
    let updated = wait(&harness, "app", "1.1.0", |chart| {
        artifact(chart).is_ok_and(|a| a.revision == "1.1.0")
    })
    .await?;
    assert!(ready_with("ChartPullSucceeded")(&updated));
    harness.stop().await;
    Ok(())
}
