//! Helpers shared by the HelmChart tests: creating Flux objects, waiting on HelmCharts and
//! pushing charts to the real registry the way `helm push` lays them out.

#![allow(dead_code)]

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sluice_api::meta::Artifact;
use sluice_api::source::HelmChart;
use sluice_e2e::poll::wait_object;
use sluice_e2e::registry::{Descriptor, Manifest, OCI_MANIFEST, OciClient};

use crate::common::{Harness, has};

/// Media type of the config of a chart pushed by Helm.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of the chart layer pushed by Helm.
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Creates a `source.toolkit.fluxcd.io/v1` object of `kind` in the harness namespace.
pub async fn create<K>(harness: &Harness, kind: &str, name: &str, spec: Value) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    create_in(&harness.client, &harness.namespace, kind, name, spec).await
}

/// Creates a `source.toolkit.fluxcd.io/v1` object of `kind` in `namespace`.
pub async fn create_in<K>(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    name: &str,
    spec: Value,
) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))?;
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    Ok(api.create(&PostParams::default(), &object).await?)
}

/// Waits until `check` holds for HelmChart `name`.
pub async fn wait(
    harness: &Harness,
    name: &str,
    what: &str,
    check: impl Fn(&HelmChart) -> bool,
) -> Result<HelmChart> {
    let api: Api<HelmChart> = Api::namespaced(harness.client.clone(), &harness.namespace);
    Ok(wait_object(&api, name, what, check).await?)
}

pub fn conditions(object: &HelmChart) -> &[Condition] {
    object
        .status
        .as_ref()
        .map_or(&[], |s| s.conditions.as_slice())
}

/// Ready with `reason` at the current generation.
pub fn ready_with(reason: &'static str) -> impl Fn(&HelmChart) -> bool {
    move |object| {
        has(conditions(object), "Ready", "True", reason)
            && object.status.as_ref().and_then(|s| s.observed_generation)
                == object.metadata.generation
    }
}

pub fn artifact(object: &HelmChart) -> Result<Artifact> {
    object
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .context("status.artifact is set")
}

/// Downloads a chart artifact, checks its digest and returns its bytes.
pub async fn artifact_bytes(harness: &Harness, artifact: &Artifact) -> Result<Vec<u8>> {
    let bytes = harness.download(&artifact.url).await?.bytes().await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    assert_eq!(digest, artifact.digest);
    Ok(bytes.to_vec())
}

/// The files of a chart archive (path → bytes).
pub fn archive_files(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    Ok(sluice_e2e::tarball::untar_gz(bytes)?.into_iter().collect())
}

/// Pushes chart archive `chart` (`name` at `version`) to `<repository>/<name>` as `helm push`
/// does: a Helm config blob, one chart layer, the version as tag with `+` written as `_`.
/// Returns the manifest's digest.
pub async fn push_chart(
    client: &OciClient,
    repository: &str,
    name: &str,
    version: &str,
    chart: &[u8],
) -> Result<String> {
    let repo = format!("{repository}/{name}");
    let config =
        serde_json::to_vec(&json!({"apiVersion": "v2", "name": name, "version": version}))?;
    client.push_blob(&repo, &config).await?;
    client.push_blob(&repo, chart).await?;
    let descriptor = |media_type: &str, data: &[u8]| Descriptor {
        media_type: media_type.to_owned(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(data))),
        size: data.len() as u64,
        annotations: BTreeMap::new(),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST.to_owned(),
        config: descriptor(HELM_CONFIG, &config),
        layers: vec![descriptor(HELM_CHART_LAYER, chart)],
        annotations: BTreeMap::from([
            ("org.opencontainers.image.title".to_owned(), name.to_owned()),
            (
                "org.opencontainers.image.version".to_owned(),
                version.to_owned(),
            ),
        ]),
    };
    let tag = version.replace('+', "_");
    let body = serde_json::to_vec(&manifest)?;
    client
        .put_manifest(&repo, &tag, OCI_MANIFEST, &body)
        .await?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&body))))
}
