//! HelmRepository (a Helm chart repository index) and HelmChart (a packaged chart).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::oci::{OCIVerificationProvider, OIDCIdentityMatch};
use crate::duration::{INTERVAL_PATTERN, TIMEOUT_PATTERN};
use crate::meta::{AccessFrom, Artifact, LocalObjectReference};
use crate::schema::{conditions, is_false};

/// Desired state of a HelmRepository.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmRepository",
    plural = "helmrepositories",
    namespaced,
    status = "HelmRepositoryStatus",
    shortname = "helmrepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "URL", "type": "string", "jsonPath": ".spec.url"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A Helm chart repository whose index is published as an artifact (type `default`), or an OCI registry of charts (type `oci`).",
    derive = "PartialEq",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositorySpec {
    /// Repository address: `http(s)://` for type `default`, `oci://` for type `oci`.
    #[schemars(regex(pattern = r"^(http|https|oci)://.*$"))]
    pub url: String,
    /// Secret with `username`/`password` (and, deprecated, TLS keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Secret with a client certificate (`tls.crt`, `tls.key`) and/or CA (`ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Sends the credentials also to chart URLs on other hosts than `url`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pass_credentials: bool,
    /// How often to fetch the index (type `default` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// Allows plain-HTTP OCI registries (type `oci` only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Timeout for index fetches and OCI operations; 60s when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIMEOUT_PATTERN))]
    pub timeout: Option<String>,
    /// Stops reconciliation while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// Cross-namespace access (not implemented by Flux either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,
    /// Repository type; `default` (an index.yaml over HTTP) when unset.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<HelmRepositoryType>,
    /// Authentication provider for OCI registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<HelmRepositoryProvider>,
}

/// Kind of Helm repository.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HelmRepositoryType {
    Default,
    Oci,
}

/// Authentication provider of an OCI HelmRepository.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HelmRepositoryProvider {
    Generic,
    Aws,
    Azure,
    Gcp,
}

/// Observed state of a HelmRepository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct HelmRepositoryStatus {
    /// Last generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// Download address of the last artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Last artifact produced (the normalised index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// Desired state of a HelmChart.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmChart",
    plural = "helmcharts",
    namespaced,
    status = "HelmChartStatus",
    shortname = "hc",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Chart", "type": "string", "jsonPath": ".spec.chart"}"#,
    printcolumn = r#"{"name": "Version", "type": "string", "jsonPath": ".spec.version"}"#,
    printcolumn = r#"{"name": "Source Kind", "type": "string", "jsonPath": ".spec.sourceRef.kind"}"#,
    printcolumn = r#"{"name": "Source Name", "type": "string", "jsonPath": ".spec.sourceRef.name"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A Helm chart from a HelmRepository, GitRepository or Bucket, packaged and published as an artifact.",
    derive = "PartialEq",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.verify) || self.sourceRef.kind == 'HelmRepository'",
    "message": "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'"
}]))]
pub struct HelmChartSpec {
    /// Chart name (HelmRepository source) or chart directory path (GitRepository, Bucket).
    pub chart: String,
    /// SemVer range of the chart version (HelmRepository source only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// The source holding the chart.
    pub source_ref: LocalHelmChartSourceReference,
    /// How often to check the source for a new chart.
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: String,
    /// What triggers a new artifact: a new chart version or a new source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<HelmChartReconcileStrategy>,
    /// Values files merged in order into the packaged chart's `values.yaml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<String>,
    /// Skips values files that do not exist instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing_values_files: bool,
    /// Stops reconciliation while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// Signature verification of OCI charts.
    #[serde(default, rename = "verify", skip_serializing_if = "Option::is_none")]
    pub verification: Option<HelmChartVerification>,
}

/// The source of a HelmChart, in its namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalHelmChartSourceReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    pub kind: HelmChartSourceKind,
    /// Name of the referent.
    pub name: String,
}

/// Kinds a HelmChart can take its chart from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HelmChartSourceKind {
    HelmRepository,
    GitRepository,
    Bucket,
}

/// What makes a HelmChart produce a new artifact.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum HelmChartReconcileStrategy {
    /// A new chart version.
    #[default]
    ChartVersion,
    /// A new source revision (GitRepository, Bucket).
    Revision,
}

/// Signature verification settings for an OCI chart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartVerification {
    /// Signing technology.
    #[schemars(extend("default" = "cosign"))]
    pub provider: OCIVerificationProvider,
    /// Secret with trusted public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Accepted keyless signing identities; any match verifies the chart.
    #[serde(
        default,
        rename = "matchOIDCIdentity",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_oidc_identity: Vec<OIDCIdentityMatch>,
}

/// Observed state of a HelmChart.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct HelmChartStatus {
    /// Last generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Source artifact revision the last chart was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_artifact_revision: Option<String>,
    /// Chart name the last artifact was resolved from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_chart_name: Option<String>,
    /// Values files of the last successful build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_values_files: Vec<String>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// Download address of the last artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Last artifact produced (the packaged chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
