//! ImageRepository: the tags of one image repository in a container registry.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DEFAULT_EXCLUSION_LIST;
use crate::duration::{DurationError, INTERVAL_PATTERN, TIMEOUT_PATTERN, parse_duration};
use crate::meta::{AccessFrom, LocalObjectReference};
use crate::schema::{conditions, drop_property_defaults, is_false};

/// Shortest registry timeout the controller uses, whatever `timeout` or `interval` say.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Desired state of an ImageRepository.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImageRepository",
    plural = "imagerepositories",
    namespaced,
    status = "ImageRepositoryStatus",
    shortname = "imgrepo",
    shortname = "imagerepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-images",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Image", "type": "string", "jsonPath": ".spec.image"}"#,
    printcolumn = r#"{"name": "Tags", "type": "string", "jsonPath": ".status.lastScanResult.tagCount"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name": "Last scan", "type": "string", "priority": 1, "jsonPath": ".status.lastScanResult.scanTime"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "An image repository whose tags are listed from its registry and kept for ImagePolicies.",
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
pub struct ImageRepositorySpec {
    /// Image repository without tag or digest, e.g. `ghcr.io/org/app` or `alpine`.
    pub image: String,
    /// How often to list the repository's tags.
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: String,
    /// Timeout for one scan (authentication included); `interval` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIMEOUT_PATTERN))]
    pub timeout: Option<String>,
    /// Secret of type `kubernetes.io/dockerconfigjson` with registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Secret with proxy settings (`address`, `username`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount whose image pull secrets (or cloud identity) are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub service_account_name: Option<String>,
    /// Secret with a client certificate (`tls.crt`, `tls.key`) and/or CA (`ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Stops scanning while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// Namespaces whose ImagePolicies may refer to this repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,
    /// Regular expressions; tags matching any of them are not stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 25), extend("default" = [r"^.*\.sig$"]))]
    pub exclusion_list: Vec<String>,
    /// Authentication provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<ImageProvider>,
    /// Allows plain-HTTP registries.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
}

/// Authentication provider of an ImageRepository.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageProvider {
    #[default]
    Generic,
    Aws,
    Azure,
    Gcp,
}

/// Outcome of the last successful scan.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = drop_property_defaults)]
pub struct ScanResult {
    /// Stable hash of the stored tags; changes exactly when the tag set changes.
    #[serde(default)]
    pub revision: String,
    /// Number of tags stored, after the exclusion list.
    pub tag_count: i64,
    /// When the scan finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_time: Option<Time>,
    /// The first 10 tags in descending lexicographic order (a sample, not the newest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest_tags: Vec<String>,
}

/// Observed state of an ImageRepository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ImageRepositoryStatus {
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// Last generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `spec.image` with the implied parts made explicit, e.g. `index.docker.io/library/alpine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_image_name: Option<String>,
    /// Outcome of the last successful scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_result: Option<ScanResult>,
    /// Exclusion list used for `lastScanResult`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_exclusion_list: Vec<String>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ImageRepository {
    /// Scan timeout: `spec.timeout`, else `spec.interval`, never below one second.
    pub fn effective_timeout(&self) -> Result<Duration, DurationError> {
        let timeout = parse_duration(self.spec.timeout.as_ref().unwrap_or(&self.spec.interval))?;
        Ok(timeout.max(MIN_TIMEOUT))
    }

    /// `spec.exclusionList`, or the default list when it is empty.
    pub fn effective_exclusion_list(&self) -> Vec<String> {
        if self.spec.exclusion_list.is_empty() {
            DEFAULT_EXCLUSION_LIST
                .iter()
                .map(|&pattern| pattern.to_owned())
                .collect()
        } else {
            self.spec.exclusion_list.clone()
        }
    }

    /// `spec.provider`, defaulting to `generic`.
    pub fn effective_provider(&self) -> ImageProvider {
        self.spec.provider.unwrap_or_default()
    }
}
