//! HelmChart from a HelmRepository of `type: oci`: charts pushed to a real distribution registry
//! with Helm's media types, versions resolved from its tags, credentials from the repository.

mod common;
mod helm_support;

use anyhow::Result;
use common::{Harness, condition, has};
use helm_support::{
    archive_files, artifact, artifact_bytes, conditions, create, push_chart, ready_with, wait,
};
use serde_json::{Value, json};
use sluice_api::source::{HelmChart, HelmRepository};
use sluice_e2e::chart_repo::chart_archive;
use sluice_e2e::registry::Registry;

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_charts_resolve_from_tags_and_pull_with_the_repository_credentials() -> Result<()> {
    let harness = Harness::start("helmchart-oci").await?;
    let registry = Registry::builder().basic_auth("helm", "s3cret").start()?;
    let client = registry.client()?;
    let mut chosen = Vec::new();
    for version in ["1.0.0", "1.1.0", "1.1.1+build.7", "2.0.0-rc.1"] {
        let archive = chart_archive(
            "app",
            version,
            &[
                ("values.yaml", "replicas: 1\nimage:\n  tag: default\n"),
                ("values-prod.yaml", "image:\n  tag: prod\n"),
                ("templates/cm.yaml", TEMPLATE),
            ],
        )?;
        push_chart(&client, "charts", "app", version, &archive).await?;
        if version == "1.1.1+build.7" {
            chosen = archive;
        }
    }
    assert!(
        client
            .tags("charts/app")
            .await?
            .contains(&"1.1.1_build.7".to_owned())
    );
    harness
        .create_secret(
            "registry-login",
            &[("username", "helm"), ("password", "s3cret")],
        )
        .await?;
    let url = registry.oci_url("charts");
    create::<HelmRepository>(
        &harness,
        "HelmRepository",
        "oci",
        json!({"type": "oci", "url": url, "insecure": true, "secretRef": {"name": "registry-login"}}),
    )
    .await?;
    let source_ref = json!({"kind": "HelmRepository", "name": "oci"});

    let spec = json!({"chart": "app", "version": ">=1.0.0 <2.0.0", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "ranged", spec).await?;
    let ranged = wait(
        &harness,
        "ranged",
        "Ready",
        ready_with("ChartPullSucceeded"),
    )
    .await?;
    let stored = artifact(&ranged)?;
    assert_eq!(
        stored.revision, "1.1.1+build.7",
        "the tag's '_' is the version's '+'"
    );
    let message = &condition(conditions(&ranged), "Ready").unwrap().message;
    assert_eq!(message, "pulled 'app' chart with version '1.1.1+build.7'");
    assert_eq!(
        artifact_bytes(&harness, &stored).await?,
        chosen,
        "an unmodified chart is stored as pulled"
    );
    let status = ranged.status.clone().unwrap_or_default();
    assert_eq!(status.observed_chart_name.as_deref(), Some("app"));
    assert_eq!(
        status.observed_source_artifact_revision, None,
        "an oci HelmRepository has no artifact"
    );

    let spec = json!({
        "chart": "app", "version": "1.0.0", "sourceRef": source_ref, "interval": "1h",
        "valuesFiles": ["values.yaml", "values-prod.yaml"],
    });
    create::<HelmChart>(&harness, "HelmChart", "exact", spec).await?;
    let exact = wait(
        &harness,
        "exact",
        "Ready",
        ready_with("ChartPackageSucceeded"),
    )
    .await?;
    let stored = artifact(&exact)?;
    assert_eq!(
        stored.revision, "1.0.0+1",
        "values files add the generation"
    );
    let files = archive_files(&artifact_bytes(&harness, &stored).await?)?;
    let values: Value = serde_saphyr::from_str(std::str::from_utf8(&files["app/values.yaml"])?)?;
    assert_eq!(values, json!({"replicas": 1, "image": {"tag": "prod"}}));

    let spec = json!({"chart": "app", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "latest", spec).await?;
    let latest = wait(
        &harness,
        "latest",
        "Ready",
        ready_with("ChartPullSucceeded"),
    )
    .await?;
    assert_eq!(
        artifact(&latest)?.revision,
        "1.1.1+build.7",
        "the default '*' skips pre-releases"
    );

    let spec = json!({"chart": "app", "version": "3.x", "sourceRef": source_ref, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "unmatched", spec).await?;
    let unmatched = wait(&harness, "unmatched", "InvalidChartReference", |o| {
        has(conditions(o), "Ready", "False", "InvalidChartReference")
    })
    .await?;
    let message = &condition(conditions(&unmatched), "Ready").unwrap().message;
    assert!(message.contains("3.x"), "{message}");
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_chart_pulls_fail_on_refused_credentials_and_non_chart_artifacts() -> Result<()> {
    let harness = Harness::start("helmchart-oci-fail").await?;
    let registry = Registry::builder().basic_auth("helm", "s3cret").start()?;
    let client = registry.client()?;
    let archive = chart_archive("app", "1.0.0", &[("templates/cm.yaml", TEMPLATE)])?;
    push_chart(&client, "charts", "app", "1.0.0", &archive).await?;
    let flux_artifact = sluice_e2e::registry::Artifact::from_files(
        [("cm.yaml", TEMPLATE)],
        "https://example.com/repo",
        "main@sha1:0000000000000000000000000000000000000000",
    )?;
    client
        .push_artifact("charts/plain", "1.0.0", &flux_artifact)
        .await?;
    harness
        .create_secret(
            "wrong",
            &[("username", "helm"), ("password", "n0t-the-password")],
        )
        .await?;
    harness
        .create_secret("right", &[("username", "helm"), ("password", "s3cret")])
        .await?;
    let url = registry.oci_url("charts");
    for (name, secret) in [("wrong", "wrong"), ("right", "right")] {
        create::<HelmRepository>(
            &harness,
            "HelmRepository",
            name,
            json!({"type": "oci", "url": url, "insecure": true, "secretRef": {"name": secret}}),
        )
        .await?;
    }

    let spec = json!({"chart": "app", "version": "1.x", "sourceRef": {"kind": "HelmRepository", "name": "wrong"}, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "refused", spec).await?;
    let refused = wait(&harness, "refused", "AuthenticationFailed", |o| {
        has(conditions(o), "Ready", "False", "AuthenticationFailed")
    })
    .await?;
    let message = &condition(conditions(&refused), "Ready").unwrap().message;
    assert!(!message.contains("n0t-the-password"), "{message}");
    assert!(artifact(&refused).is_err(), "no artifact without a pull");

    let spec = json!({"chart": "plain", "version": "1.0.0", "sourceRef": {"kind": "HelmRepository", "name": "right"}, "interval": "1h"});
    create::<HelmChart>(&harness, "HelmChart", "not-a-chart", spec).await?;
    let not_chart = wait(&harness, "not-a-chart", "ChartPullError", |o| {
        has(conditions(o), "Ready", "False", "ChartPullError")
    })
    .await?;
    let message = &condition(conditions(&not_chart), "Ready").unwrap().message;
    assert!(message.contains("not a Helm chart"), "{message}");
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_charts_over_https_use_the_cert_secret_and_docker_config_login() -> Result<()> {
    use base64::Engine as _;
    let harness = Harness::start("helmchart-oci-tls").await?;
    let ca = sluice_e2e::tls::TestCa::new("sluice-helm-oci-ca")?;
    let registry = Registry::builder()
        .https(&ca)?
        .basic_auth("robot", "reg-pass-42")
        .start()?;
    let archive = chart_archive("app", "0.2.0", &[("templates/cm.yaml", TEMPLATE)])?;
    push_chart(&registry.client()?, "charts", "app", "0.2.0", &archive).await?;
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:reg-pass-42");
    let config = json!({"auths": {registry.host(): {"auth": auth}}}).to_string();
    harness
        .create_secret_typed(
            "docker-login",
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", &config)],
        )
        .await?;
    harness
        .create_secret("registry-ca", &[("ca.crt", &ca.cert_pem())])
        .await?;
    let url = registry.oci_url("charts");
    let login = json!({"name": "docker-login"});
    let spec = json!({"type": "oci", "url": url, "secretRef": login, "certSecretRef": {"name": "registry-ca"}});
    create::<HelmRepository>(&harness, "HelmRepository", "trusted", spec).await?;
    let spec = json!({"type": "oci", "url": url, "secretRef": login});
    create::<HelmRepository>(&harness, "HelmRepository", "untrusted", spec).await?;

    let chart = |repository: &str| json!({"chart": "app", "version": "0.x", "interval": "1h", "sourceRef": {"kind": "HelmRepository", "name": repository}});
    create::<HelmChart>(&harness, "HelmChart", "trusted", chart("trusted")).await?;
    create::<HelmChart>(&harness, "HelmChart", "untrusted", chart("untrusted")).await?;
    let trusted = wait(
        &harness,
        "trusted",
        "Ready",
        ready_with("ChartPullSucceeded"),
    )
    .await?;
    let stored = artifact(&trusted)?;
    assert_eq!(stored.revision, "0.2.0");
    assert_eq!(artifact_bytes(&harness, &stored).await?, archive);
    let untrusted = wait(&harness, "untrusted", "ChartPullError", |o| {
        has(conditions(o), "Ready", "False", "ChartPullError")
    })
    .await?;
    let message = &condition(conditions(&untrusted), "Ready").unwrap().message;
    assert!(message.contains("TLS"), "{message}");
    harness.stop().await;
    Ok(())
}
