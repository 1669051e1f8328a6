//! HelmRepository end to end against a real chart repository (a static file server on loopback
//! serving `index.yaml` and chart archives), with basic auth and HTTPS.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Harness, condition, has};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sluice_api::meta::Artifact;
use sluice_api::source::HelmRepository;
use sluice_e2e::chart_repo::{ChartRepoOptions, ChartRepository, IndexEntry, index_yaml};
use sluice_e2e::poll::{request_reconcile, wait_object};
use sluice_e2e::tls::TestCa;

fn api(harness: &Harness) -> Api<HelmRepository> {
    Api::namespaced(harness.client.clone(), &harness.namespace)
}

async fn create(harness: &Harness, name: &str, spec: Value) -> Result<HelmRepository> {
    let object: HelmRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": name},
        "spec": spec,
    }))?;
    Ok(api(harness).create(&PostParams::default(), &object).await?)
}

async fn wait(
    harness: &Harness,
    name: &str,
    what: &str,
    check: impl Fn(&HelmRepository) -> bool,
) -> Result<HelmRepository> {
    Ok(wait_object(&api(harness), name, what, check).await?)
}

fn conditions(object: &HelmRepository) -> &[Condition] {
    object
        .status
        .as_ref()
        .map_or(&[], |s| s.conditions.as_slice())
}

fn ready(object: &HelmRepository) -> bool {
    has(conditions(object), "Ready", "True", "Succeeded")
        && object.status.as_ref().and_then(|s| s.observed_generation) == object.metadata.generation
}

fn artifact(object: &HelmRepository) -> Result<Artifact> {
    object
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .context("status.artifact is set")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An index listing `app` out of order (as repositories may) plus `base`.
fn unordered_index() -> String {
    index_yaml(&[
        IndexEntry {
            name: "app",
            version: "1.0.0",
            url: "charts/app-1.0.0.tgz",
        },
        IndexEntry {
            name: "app",
            version: "1.10.0",
            url: "charts/app-1.10.0.tgz",
        },
        IndexEntry {
            name: "app",
            version: "1.2.0",
            url: "charts/app-1.2.0.tgz",
        },
        IndexEntry {
            name: "base",
            version: "0.1.0",
            url: "charts/base-0.1.0.tgz",
        },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_with_basic_auth_is_normalised_and_an_unchanged_index_is_a_no_op() -> Result<()> {
    let harness = Harness::start("helmrepo-auth").await?;
    let options = ChartRepoOptions {
        basic_auth: Some(("helm", "s3cret")),
        ..ChartRepoOptions::default()
    };
    let repo = ChartRepository::start(options).await?;
    let index = unordered_index();
    repo.put("index.yaml", index.clone());
    harness
        .create_secret("helm-auth", &[("username", "helm"), ("password", "s3cret")])
        .await?;
    let spec = json!({"url": repo.url(), "interval": "1h", "secretRef": {"name": "helm-auth"}});
    create(&harness, "charts", spec).await?;
    let ready_object = wait(&harness, "charts", "Ready", ready).await?;
    let first = artifact(&ready_object)?;
    assert_eq!(
        first.revision,
        sha256(index.as_bytes()),
        "Flux: digest of the index"
    );
    let message = &condition(conditions(&ready_object), "Ready")
        .unwrap()
        .message;
    assert_eq!(
        message,
        &format!("stored artifact: revision '{}'", first.revision)
    );
    assert_eq!(
        ready_object.status.as_ref().and_then(|s| s.url.clone()),
        Some(first.url.clone())
    );

    let body = harness.download(&first.url).await?.bytes().await?;
    assert_eq!(sha256(&body), first.digest);
    let stored: Value = serde_json::from_slice(&body).context("the artifact is JSON")?;
    let versions: Vec<&str> = stored["entries"]["app"]
        .as_array()
        .context("app entries")?
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(versions, ["1.10.0", "1.2.0", "1.0.0"], "newest first");
    let events = harness.event_reasons("charts").await?;
    assert!(events.iter().any(|r| r == "NewArtifact"), "{events:?}");

    let again = request_reconcile(&api(&harness), "charts", "unchanged").await?;
    assert_eq!(
        artifact(&again)?,
        first,
        "an unchanged index keeps the artifact"
    );
    assert!(repo.requests().iter().any(|r| r.authorized));

    let changed = format!("{index}# republished\n");
    repo.put("index.yaml", changed.clone());
    let updated = request_reconcile(&api(&harness), "charts", "changed").await?;
    assert_eq!(artifact(&updated)?.revision, sha256(changed.as_bytes()));
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_and_a_missing_index_fail_with_fetch_failed() -> Result<()> {
    let harness = Harness::start("helmrepo-fail").await?;
    let options = ChartRepoOptions {
        basic_auth: Some(("helm", "s3cret")),
        ..ChartRepoOptions::default()
    };
    let repo = ChartRepository::start(options).await?;
    repo.put("index.yaml", unordered_index());
    create(
        &harness,
        "noauth",
        json!({"url": repo.url(), "interval": "1h"}),
    )
    .await?;
    let failed = wait(&harness, "noauth", "FetchFailed", |o| {
        has(conditions(o), "FetchFailed", "True", "Failed")
    })
    .await?;
    let message = &condition(conditions(&failed), "Ready").unwrap().message;
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(
        message.contains("failed to fetch Helm repository index"),
        "{message}"
    );

    let open = ChartRepository::start(ChartRepoOptions::default()).await?;
    let url = format!("{}/missing", open.url());
    create(&harness, "missing", json!({"url": url, "interval": "1h"})).await?;
    let failed = wait(&harness, "missing", "Ready=False", |o| {
        has(conditions(o), "Ready", "False", "Failed")
    })
    .await?;
    let message = &condition(conditions(&failed), "Ready").unwrap().message;
    assert!(message.contains("HTTP 404"), "{message}");

    create(
        &harness,
        "wrong-type",
        json!({"url": "oci://ghcr.io/charts", "interval": "1h"}),
    )
    .await?;
    let stalled = wait(&harness, "wrong-type", "Stalled", |o| {
        has(conditions(o), "Stalled", "True", "URLInvalid")
    })
    .await?;
    let message = &condition(conditions(&stalled), "Ready").unwrap().message;
    assert!(message.contains("spec.type"), "{message}");
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_repository_is_trusted_through_cert_secret_ref() -> Result<()> {
    let harness = Harness::start("helmrepo-tls").await?;
    let ca = TestCa::new("charts-ca")?;
    let options = ChartRepoOptions {
        tls: Some(&ca),
        ..ChartRepoOptions::default()
    };
    let repo = ChartRepository::start(options).await?;
    repo.put("index.yaml", unordered_index());
    assert!(repo.url().starts_with("https://"));
    create(
        &harness,
        "untrusted",
        json!({"url": repo.url(), "interval": "1h"}),
    )
    .await?;
    wait(&harness, "untrusted", "FetchFailed", |o| {
        has(conditions(o), "FetchFailed", "True", "Failed")
    })
    .await?;
    harness
        .create_secret("charts-ca", &[("ca.crt", &ca.cert_pem())])
        .await?;
    let spec = json!({"url": repo.url(), "interval": "1h", "certSecretRef": {"name": "charts-ca"}});
    create(&harness, "trusted", spec).await?;
    wait(&harness, "trusted", "Ready", ready).await?;
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_repository_type_is_left_static_as_in_flux() -> Result<()> {
    let harness = Harness::start("helmrepo-oci").await?;
    let spec = json!({"url": "oci://ghcr.io/stefanprodan/charts", "type": "oci", "interval": "1m"});
    create(&harness, "oci", spec).await?;
    let repo = ChartRepository::start(ChartRepoOptions::default()).await?;
    repo.put("index.yaml", unordered_index());
    create(
        &harness,
        "http",
        json!({"url": repo.url(), "interval": "1h"}),
    )
    .await?;
    wait(&harness, "http", "Ready", ready).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let oci = api(&harness).get("oci").await?;
    assert!(
        oci.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(conditions(&oci).is_empty(), "{:?}", oci.status);
    assert!(artifact(&oci).is_err());
    harness.stop().await;
    Ok(())
}
