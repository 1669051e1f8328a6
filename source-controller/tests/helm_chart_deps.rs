//! HelmChart dependency build for a chart directory in a GitRepository: dependencies missing from
//! `charts/` come from a `file://` path in the same source, an HTTP chart repository (with the
//! credentials of the matching HelmRepository, else anonymously) and a real OCI registry.

mod common;
mod helm_support;

use anyhow::Result;
use common::{Harness, condition, git_ready, has};
use helm_support::{
    archive_files, artifact, artifact_bytes, conditions, create, push_chart, ready_with, wait,
};
use serde_json::json;
use sluice_api::source::{HelmChart, HelmRepository};
use sluice_e2e::chart_repo::{
    ChartRepoOptions, ChartRepository, IndexEntry, chart_archive, index_yaml,
};
use sluice_e2e::git::GitServer;
use sluice_e2e::registry::Registry;

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

/// Serves `name` at each of `versions` with an index listing them; returns the archives.
fn publish(repo: &ChartRepository, name: &str, versions: &[&str]) -> Result<Vec<Vec<u8>>> {
    let mut archives = Vec::new();
    let mut paths = Vec::new();
    for version in versions {
        let archive = chart_archive(name, version, &[("templates/cm.yaml", TEMPLATE)])?;
        let path = format!("{name}-{version}.tgz");
        repo.put(&path, archive.clone());
        archives.push(archive);
        paths.push(path);
    }
    let entries: Vec<IndexEntry<'_>> = versions
        .iter()
        .zip(&paths)
        .map(|(version, url)| IndexEntry { name, version, url })
        .collect();
    repo.put("index.yaml", index_yaml(&entries));
    Ok(archives)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_dependencies_come_from_the_source_repositories_and_registries() -> Result<()> {
    let harness = Harness::start("helmchart-deps").await?;
    let private = ChartRepository::start(ChartRepoOptions {
        basic_auth: Some(("helm", "s3cret")),
        ..ChartRepoOptions::default()
    })
    .await?;
    let redis = publish(&private, "redis", &["1.0.0", "1.2.0", "2.0.0"])?;
    let public = ChartRepository::start(ChartRepoOptions::default()).await?;
    let util = publish(&public, "util", &["0.1.0"])?;
    let registry = Registry::builder().start()?;
    let db = chart_archive("db", "2.0.0", &[("templates/cm.yaml", TEMPLATE)])?;
    push_chart(&registry.client()?, "charts", "db", "2.0.0", &db).await?;

    harness
        .create_secret(
            "private-login",
            &[("username", "helm"), ("password", "s3cret")],
        )
        .await?;
    let spec =
        json!({"url": private.url(), "interval": "1h", "secretRef": {"name": "private-login"}});
    create::<HelmRepository>(&harness, "HelmRepository", "private", spec).await?;
    let spec =
        json!({"type": "oci", "url": format!("{}/", registry.oci_url("charts")), "insecure": true});
    create::<HelmRepository>(&harness, "HelmRepository", "registry", spec).await?;

    let metadata = format!(
        "apiVersion: v2\nname: web\nversion: 0.3.0\ndependencies:\n\
         - name: redis\n  version: 1.x\n  repository: {}/\n\
         - name: util\n  version: '>=0.1.0'\n  repository: {}\n\
         - name: db\n  version: 2.0.0\n  repository: {}\n\
         - name: common\n  version: ~0.5\n  repository: file://../common\n\
         - name: vendored\n  version: 1.0.0\n",
        private.url(),
        public.url(),
        registry.oci_url("charts"),
    );
    let server = GitServer::builder().start()?;
    server.create_repo("charts")?;
    server.commit(
        "charts",
        "main",
        [
            ("charts/web/Chart.yaml", metadata.as_str()),
            ("charts/web/templates/cm.yaml", TEMPLATE),
            (
                "charts/web/charts/vendored/Chart.yaml",
                "apiVersion: v2\nname: vendored\nversion: 1.0.0\n",
            ),
            (
                "charts/common/Chart.yaml",
                "apiVersion: v2\nname: common\nversion: 0.5.2\ntype: library\n",
            ),
            (
                "charts/common/templates/_helpers.tpl",
                "{{- define \"x\" }}x{{ end }}\n",
            ),
        ],
        "chart with dependencies",
    )?;
    harness
        .create_git(
            "charts",
            json!({"url": server.http_url("charts"), "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    harness.wait_git("charts", "Ready", git_ready).await?;
    let spec = json!({"chart": "charts/web", "sourceRef": {"kind": "GitRepository", "name": "charts"}, "interval": "1h"});
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
    let files = archive_files(&artifact_bytes(&harness, &stored).await?)?;
    let dependencies: Vec<&str> = files
        .keys()
        .filter(|path| path.starts_with("web/charts/"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        dependencies,
        [
            "web/charts/common-0.5.2.tgz",
            "web/charts/db-2.0.0.tgz",
            "web/charts/redis-1.2.0.tgz",
            "web/charts/util-0.1.0.tgz",
            "web/charts/vendored/Chart.yaml",
        ]
    );
    assert_eq!(
        files["web/charts/redis-1.2.0.tgz"], redis[1],
        "the newest 1.x, as served"
    );
    assert_eq!(files["web/charts/util-0.1.0.tgz"], util[0]);
    assert_eq!(
        files["web/charts/db-2.0.0.tgz"], db,
        "the registry's chart layer"
    );
    let common = archive_files(&files["web/charts/common-0.5.2.tgz"])?;
    assert!(
        common.contains_key("common/templates/_helpers.tpl"),
        "{common:?}"
    );
    let private_requests = private.requests();
    assert!(
        private_requests
            .iter()
            .any(|r| r.path.ends_with("redis-1.2.0.tgz") && r.authorized),
        "the chart was downloaded with the HelmRepository's credentials: {private_requests:?}"
    );
    assert!(
        public.requests().iter().all(|r| !r.authorized),
        "a repository without a HelmRepository is used anonymously"
    );
    let reasons = harness.event_reasons("web").await?;
    assert!(
        reasons.iter().any(|r| r == "ResolvedDependencies"),
        "{reasons:?}"
    );
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependency_build_failures_name_the_dependency() -> Result<()> {
    let harness = Harness::start("helmchart-deps-fail").await?;
    let private = ChartRepository::start(ChartRepoOptions {
        basic_auth: Some(("helm", "s3cret")),
        ..ChartRepoOptions::default()
    })
    .await?;
    publish(&private, "redis", &["1.0.0"])?;
    let chart = |dependency: &str| {
        format!("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n{dependency}")
    };
    let unauthorised = chart(&format!(
        "- name: redis\n  version: 1.x\n  repository: {}\n",
        private.url()
    ));
    let escaping = chart("- name: secrets\n  repository: file://../../../../etc\n");
    let unmatched = chart("- name: sibling\n  version: 2.x\n  repository: file://../sibling\n");
    let server = GitServer::builder().start()?;
    server.create_repo("charts")?;
    server.commit(
        "charts",
        "main",
        [
            ("unauthorised/Chart.yaml", unauthorised.as_str()),
            ("escaping/Chart.yaml", escaping.as_str()),
            ("unmatched/Chart.yaml", unmatched.as_str()),
            (
                "sibling/Chart.yaml",
                "apiVersion: v2\nname: sibling\nversion: 1.0.0\n",
            ),
        ],
        "broken dependencies",
    )?;
    harness
        .create_git(
            "charts",
            json!({"url": server.http_url("charts"), "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    harness.wait_git("charts", "Ready", git_ready).await?;
    for (name, expected) in [
        ("unauthorised", "HTTP 401"),
        ("escaping", "leaves the source"),
        (
            "unmatched",
            "can't get a valid version for constraint '2.x'",
        ),
    ] {
        let spec = json!({"chart": name, "sourceRef": {"kind": "GitRepository", "name": "charts"}, "interval": "1h"});
        create::<HelmChart>(&harness, "HelmChart", name, spec).await?;
        let failed = wait(&harness, name, "DependencyBuildError", |o| {
            has(conditions(o), "Ready", "False", "DependencyBuildError")
                && has(conditions(o), "BuildFailed", "True", "DependencyBuildError")
        })
        .await?;
        let message = &condition(conditions(&failed), "Ready").unwrap().message;
        assert!(message.starts_with("dependency build error: "), "{message}");
        assert!(message.contains(expected), "{name}: {message}");
        assert!(artifact(&failed).is_err(), "{name}: nothing stored");
    }
    assert!(
        private.requests().iter().all(|r| !r.authorized),
        "no HelmRepository matches, so no credentials were sent"
    );
    harness.stop().await;
    Ok(())
}
