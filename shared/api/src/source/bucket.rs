//! Bucket: produces an artifact from an object storage bucket.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{INTERVAL_PATTERN, TIMEOUT_PATTERN};
use crate::meta::{Artifact, LocalObjectReference};
use crate::schema::{conditions, is_false};

/// Desired state of a Bucket.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "Bucket",
    plural = "buckets",
    namespaced,
    status = "BucketStatus",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Endpoint", "type": "string", "jsonPath": ".spec.endpoint"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "An object storage bucket whose contents are published as an artifact.",
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
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)",
        "message": "sts is only supported by the 'aws' and 'generic' providers"
    },
    {
        "rule": "self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'",
        "message": "the 'aws' provider only supports the 'aws' STS provider"
    },
    {
        "rule": "self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'",
        "message": "the 'generic' provider only supports the 'ldap' STS provider"
    },
    {
        "rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)",
        "message": "sts.secretRef is not used by the 'aws' STS provider"
    },
    {
        "rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)",
        "message": "sts.certSecretRef is not used by the 'aws' STS provider"
    },
    {
        "rule": "self.provider != 'generic' || !has(self.serviceAccountName)",
        "message": "serviceAccountName is not supported by the 'generic' provider"
    },
    {
        "rule": "!has(self.secretRef) || !has(self.serviceAccountName)",
        "message": "secretRef and serviceAccountName are mutually exclusive"
    }
]))]
pub struct BucketSpec {
    /// Storage provider; `generic` means any S3-compatible API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<BucketProvider>,
    /// Name of the bucket.
    pub bucket_name: String,
    /// Storage endpoint address.
    pub endpoint: String,
    /// Security Token Service for temporary credentials (`aws` and `generic` providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<BucketStsSpec>,
    /// Allows plain-HTTP endpoints.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Key prefix for server-side filtering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Secret with credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount used for workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with a client certificate (`tls.crt`, `tls.key`) and/or CA (`ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Secret with proxy settings (`address`, `username`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// How often to list the bucket for changes.
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: String,
    /// Timeout for list and fetch operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIMEOUT_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<String>,
    /// Exclusions in `.gitignore` syntax, replacing the default set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Stops reconciliation while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// Object storage provider of a Bucket.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BucketProvider {
    Generic,
    Aws,
    Gcp,
    Azure,
}

/// Security Token Service used to obtain temporary bucket credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketStsSpec {
    /// Kind of token service.
    pub provider: BucketStsProvider,
    /// HTTP(S) address of the token service.
    #[schemars(regex(pattern = r"^(http|https)://.*$"))]
    pub endpoint: String,
    /// Secret with `username` and `password` (`ldap` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Secret with a client certificate and/or CA (`ldap` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
}

/// Kind of Security Token Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BucketStsProvider {
    Aws,
    Ldap,
}

/// Observed state of a Bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct BucketStatus {
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
    /// Last artifact produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Exclusions used for the last artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
