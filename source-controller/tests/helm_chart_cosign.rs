//! HelmChart `spec.verify` for OCI charts signed by the real cosign CLI, next to Flux's own
//! source-controller reading the same registry: a signed chart verifies with the same
//! `SourceVerified` message, unsigned and foreign-signed charts fail with Flux's conditions and
//! keep the last verified artifact, and the modes Sluice does not implement stall.

mod common;
mod helm_support;

use anyhow::{Context, Result};
use common::{Harness, condition, has};
use helm_support::{artifact_bytes, conditions, create_in, push_chart, wait};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_api::source::{HelmChart, HelmRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::chart_repo::chart_archive;
use sluice_e2e::chart_repo::{ChartRepoOptions, ChartRepository, IndexEntry, index_yaml};
use sluice_e2e::cosign::Cosign;
use sluice_e2e::flux::{FluxController, FluxProcess};
use sluice_e2e::poll::{request_reconcile, wait_object};
use sluice_e2e::registry::Registry;

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

/// The registry, the chart repository and the keys both controllers are given.
struct Upstreams {
    registry: Registry,
    chart_repository: ChartRepository,
    cosign: Cosign,
    trusted: String,
    other: String,
}

impl Upstreams {
    /// `host/charts/<chart>@<digest>`, as cosign signs a chart.
    fn pinned(&self, chart: &str, digest: &str) -> String {
        format!("{}/charts/{chart}@{digest}", self.registry.host())
    }
}

async fn upstreams() -> Result<Upstreams> {
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    let cosign = Cosign::new()?;
    let trusted = cosign.generate_key_pair("trusted").await?;
    let other = cosign.generate_key_pair("other").await?;
    let chart_repository = ChartRepository::start(ChartRepoOptions::default()).await?;
    let archive = chart_archive("web", "1.0.0", &[("templates/cm.yaml", TEMPLATE)])?;
    chart_repository.put("web-1.0.0.tgz", archive);
    chart_repository.put(
        "index.yaml",
        index_yaml(&[IndexEntry {
            name: "web",
            version: "1.0.0",
            url: "web-1.0.0.tgz",
        }]),
    );
    let up = Upstreams {
        registry,
        chart_repository,
        cosign,
        trusted,
        other,
    };
    let signed = push("app", "1.0.0", &client).await?;
    up.cosign
        .sign("trusted", &up.pinned("app", &signed))
        .await?;
    push("plain", "1.0.0", &client).await?;
    Ok(up)
}

async fn push(
    chart: &str,
    version: &str,
    client: &sluice_e2e::registry::OciClient,
) -> Result<String> {
    let archive = chart_archive(chart, version, &[("templates/cm.yaml", TEMPLATE)])?;
    push_chart(client, "charts", chart, version, &archive).await
}

/// The key Secrets, the repositories and the charts in `namespace`.
async fn declare(client: &Client, namespace: &str, up: &Upstreams) -> Result<()> {
    for (name, key, pem) in [
        ("trusted", "cosign.pub", &up.trusted),
        ("other", "other.pub", &up.other),
    ] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "stringData": {key: pem},
        }))?;
        Api::<Secret>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &secret)
            .await?;
    }
    let spec = json!({"type": "oci", "url": up.registry.oci_url("charts"), "insecure": true});
    create_in::<HelmRepository>(client, namespace, "HelmRepository", "registry", spec).await?;
    let spec = json!({"url": up.chart_repository.url(), "interval": "1h"});
    create_in::<HelmRepository>(client, namespace, "HelmRepository", "http", spec).await?;
    for (name, chart, repository, secret) in [
        ("signed", "app", "registry", "trusted"),
        ("unsigned", "plain", "registry", "trusted"),
        ("foreign", "app", "registry", "other"),
        ("http", "web", "http", "trusted"),
    ] {
        let spec = json!({"chart": chart, "version": "1.x", "interval": "1h",
                          "sourceRef": {"kind": "HelmRepository", "name": repository},
                          "verify": {"provider": "cosign", "secretRef": {"name": secret}}});
        create_in::<HelmChart>(client, namespace, "HelmChart", name, spec).await?;
    }
    Ok(())
}

fn source_verified(chart: &HelmChart) -> Option<&Condition> {
    condition(conditions(chart), "SourceVerified")
}

fn verified(chart: &HelmChart) -> bool {
    has(conditions(chart), "Ready", "True", "ChartPullSucceeded")
        && has(conditions(chart), "SourceVerified", "True", "Succeeded")
        && chart.status.as_ref().and_then(|s| s.observed_generation) == chart.metadata.generation
}

/// Flux's record of a chart that did not verify: `BuildFailed` with `ChartVerificationError`,
/// and `Ready` taking `SourceVerified=False`'s reason.
fn verification_failed(chart: &HelmChart) -> bool {
    has(conditions(chart), "Ready", "False", "VerificationError")
        && has(
            conditions(chart),
            "BuildFailed",
            "True",
            "ChartVerificationError",
        )
        && has(
            conditions(chart),
            "SourceVerified",
            "False",
            "VerificationError",
        )
}

fn revision_of(chart: &HelmChart) -> Option<&str> {
    chart
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.as_str())
}

fn message_of(chart: &HelmChart, type_: &str) -> String {
    condition(conditions(chart), type_).map_or_else(String::new, |c| c.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_charts_verify_as_in_flux_and_unsigned_ones_keep_the_verified_artifact() -> Result<()> {
    let harness = Harness::start("helmchart-cosign").await?;
    let up = upstreams().await?;
    declare(&harness.client, &harness.namespace, &up).await?;
    let plane = ControlPlane::shared().await?;
    let (flux_namespace, flux) =
        FluxProcess::start_in_new_namespace(plane, FluxController::Source, "flux-helm-cosign")
            .await?;
    declare(&harness.client, &flux_namespace, &up).await?;
    let flux_charts: Api<HelmChart> = Api::namespaced(harness.client.clone(), &flux_namespace);

    let ours = wait(&harness, "signed", "verified", verified).await?;
    let theirs = wait_object(&flux_charts, "signed", "verified by Flux", verified)
        .await
        .with_context(|| flux.log_tail())?;
    assert_eq!(
        source_verified(&ours).map(|c| &c.message),
        Some(&"verified signature of version 1.0.0".to_owned())
    );
    assert_eq!(
        source_verified(&ours).map(|c| &c.message),
        source_verified(&theirs).map(|c| &c.message)
    );
    let stored = ours
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .context("artifact")?;
    let flux_stored = theirs
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .context("Flux's artifact")?;
    assert_eq!(stored.digest, flux_stored.digest, "the same chart bytes");
    artifact_bytes(&harness, &stored).await?;

    let host = up.registry.host();
    for (name, chart) in [("unsigned", "plain"), ("foreign", "app"), ("http", "web")] {
        let ours = wait(
            &harness,
            name,
            "ChartVerificationError",
            verification_failed,
        )
        .await?;
        let theirs = wait_object(&flux_charts, name, "refused by Flux", verification_failed)
            .await
            .with_context(|| flux.log_tail())?;
        let (message, flux_message) = (message_of(&ours, "Ready"), message_of(&theirs, "Ready"));
        let prefix = match name {
            "http" => "chart verification error: ".to_owned(),
            _ => format!(
                "chart verification error: failed to verify oci://{host}/charts/{chart}:1.0.0: "
            ),
        };
        assert!(message.starts_with(&prefix), "{message}");
        assert!(flux_message.starts_with(&prefix), "Flux: {flux_message}");
        assert_eq!(message, message_of(&ours, "SourceVerified"));
        assert_eq!(message, message_of(&ours, "BuildFailed"));
        assert_eq!(revision_of(&ours), None, "{name}: no artifact");
        assert_eq!(revision_of(&theirs), None, "{name}: Flux stores none");
    }
    let foreign = wait(
        &harness,
        "foreign",
        "ChartVerificationError",
        verification_failed,
    )
    .await?;
    let message = message_of(&foreign, "Ready");
    assert!(
        message.contains("[\"other.pub\"]"),
        "names the key: {message}"
    );
    let key_body = up.other.lines().nth(1).context("PEM body")?;
    assert!(!serde_json::to_string(&foreign.status)?.contains(key_body));

    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_new_version_keeps_the_verified_chart_until_it_is_signed() -> Result<()> {
    let harness = Harness::start("helmchart-cosign-new").await?;
    let up = upstreams().await?;
    declare(&harness.client, &harness.namespace, &up).await?;
    let charts: Api<HelmChart> = Api::namespaced(harness.client.clone(), &harness.namespace);
    wait(&harness, "signed", "verified", verified).await?;

    let client = up.registry.client()?;
    let newer = push("app", "1.1.0", &client).await?;
    request_reconcile(&charts, "signed", "unsigned-1.1.0").await?;
    let refused = wait(
        &harness,
        "signed",
        "ChartVerificationError",
        verification_failed,
    )
    .await?;
    assert_eq!(
        revision_of(&refused),
        Some("1.0.0"),
        "the verified chart stays"
    );
    let message = message_of(&refused, "Ready");
    assert!(message.contains("charts/app:1.1.0"), "{message}");

    up.cosign.sign("trusted", &up.pinned("app", &newer)).await?;
    request_reconcile(&charts, "signed", "signed-1.1.0").await?;
    let accepted = wait(&harness, "signed", "1.1.0 verified", |c| {
        verified(c) && revision_of(c) == Some("1.1.0")
    })
    .await?;
    assert_eq!(
        message_of(&accepted, "SourceVerified"),
        "verified signature of version 1.1.0"
    );

    // Dropping spec.verify lets the unsigned chart through and drops SourceVerified.
    let patch = json!({"spec": {"verify": null}});
    charts
        .patch("unsigned", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let unverified = wait(&harness, "unsigned", "Ready without verify", |c| {
        has(conditions(c), "Ready", "True", "ChartPullSucceeded")
            && c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation
    })
    .await?;
    assert!(source_verified(&unverified).is_none());

    // Keyless cosign and notation are not implemented: they stall, naming the field.
    for (name, verify, field) in [
        (
            "keyless",
            json!({"provider": "cosign"}),
            "spec.verify.secretRef",
        ),
        (
            "notation",
            json!({"provider": "notation", "secretRef": {"name": "trusted"}}),
            "'notation'",
        ),
    ] {
        let spec = json!({"chart": "app", "interval": "1h", "verify": verify,
                          "sourceRef": {"kind": "HelmRepository", "name": "registry"}});
        create_in::<HelmChart>(&harness.client, &harness.namespace, "HelmChart", name, spec)
            .await?;
        let stalled = wait(&harness, name, "Stalled", |c| {
            has(conditions(c), "Stalled", "True", "VerifyNotSupported")
        })
        .await?;
        let message = message_of(&stalled, "Stalled");
        assert!(message.contains(field), "{message}");
        assert!(has(
            conditions(&stalled),
            "SourceVerified",
            "False",
            "VerificationError"
        ));
        assert_eq!(revision_of(&stalled), None);
    }
    harness.stop().await;
    Ok(())
}
