//! ImagePolicy: selects the latest tag of an ImageRepository.

use std::fmt;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DEFAULT_DIGEST_REFRESH_INTERVAL;
use crate::duration::{DurationError, INTERVAL_PATTERN, parse_duration};
use crate::meta::NamespacedObjectReference;
use crate::schema::{conditions, drop_property_defaults, is_false};

/// Desired state of an ImagePolicy.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImagePolicy",
    plural = "imagepolicies",
    namespaced,
    status = "ImagePolicyStatus",
    shortname = "imgpol",
    shortname = "imagepol",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-images",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Image", "type": "string", "jsonPath": ".status.latestRef.name"}"#,
    printcolumn = r#"{"name": "Tag", "type": "string", "jsonPath": ".status.latestRef.tag"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "Selects the latest tag of an ImageRepository by SemVer range, alphabetical or numerical order.",
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
        "rule": "!has(self.interval) || (has(self.digestReflectionPolicy) && self.digestReflectionPolicy == 'Always')",
        "message": "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'"
    },
    {
        "rule": "has(self.interval) || !has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always'",
        "message": "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'"
    }
]))]
pub struct ImagePolicySpec {
    /// The ImageRepository whose tags are selected from; cross-namespace if its `accessFrom` allows.
    pub image_repository_ref: NamespacedObjectReference,
    /// How the latest tag is chosen.
    pub policy: ImagePolicyChoice,
    /// Which tags take part, and what part of them is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<TagFilter>,
    /// When `status.latestRef.digest` is looked up in the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Never"))]
    pub digest_reflection_policy: Option<ReflectionPolicy>,
    /// How often the digest is refreshed; only with `digestReflectionPolicy: Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// Stops reconciliation while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// When to look up the digest of the selected tag.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReflectionPolicy {
    /// On every reconciliation, and every `interval`.
    Always,
    /// When the selected tag changes or no digest is recorded yet.
    IfNotPresent,
    /// Never; `latestRef.digest` stays empty.
    #[default]
    Never,
}

/// The selection policy; Flux uses the first set of `semver`, `alphabetical`, `numerical`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ImagePolicyChoice {
    /// Highest version within a SemVer range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemVerPolicy>,
    /// Last tag in alphabetical order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<AlphabeticalPolicy>,
    /// Last tag in numerical order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<NumericalPolicy>,
}

/// Selects the highest version within a range.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SemVerPolicy {
    /// SemVer range such as `>=1.0.0 <2.0.0`, `^1.2` or `1.x`.
    pub range: String,
}

/// Orders tags as strings: `asc` selects the greatest, `desc` the least.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AlphabeticalPolicy {
    /// Sort order; `asc` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "asc"))]
    pub order: Option<SortOrder>,
}

/// Orders tags as numbers: `asc` selects the greatest, `desc` the least.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NumericalPolicy {
    /// Sort order; `asc` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "asc"))]
    pub order: Option<SortOrder>,
}

/// Sort order of the alphabetical and numerical policies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending: the last (greatest) tag is selected.
    #[default]
    Asc,
    /// Descending: the first (least) tag is selected.
    Desc,
}

/// A regular expression tags must match, and what to compare of a matching tag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transform = drop_property_defaults)]
pub struct TagFilter {
    /// Regular expression (Go RE2 syntax) a tag must match; every tag when empty.
    #[serde(default)]
    pub pattern: String,
    /// Template such as `$ts` or `${1}` built from the match and compared instead of the tag.
    #[serde(default)]
    pub extract: String,
}

/// An image reference: repository, tag and optional digest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ImageRef {
    /// The ImageRepository's `spec.image`, as written there.
    pub name: String,
    /// The selected tag.
    pub tag: String,
    /// Manifest digest of the tag, e.g. `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)?;
        if !self.digest.is_empty() {
            write!(f, "@{}", self.digest)?;
        }
        Ok(())
    }
}

/// Observed state of an ImagePolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ImagePolicyStatus {
    /// The image selected by the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ref: Option<ImageRef>,
    /// The image selected before `latestRef` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_previous_ref: Option<ImageRef>,
    /// Last generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ImagePolicy {
    /// `spec.digestReflectionPolicy`, defaulting to `Never`.
    pub fn effective_digest_reflection_policy(&self) -> ReflectionPolicy {
        self.spec.digest_reflection_policy.unwrap_or_default()
    }

    /// Digest refresh period: `spec.interval` (default 10m) with `Always`, otherwise none.
    pub fn digest_refresh_interval(&self) -> Result<Option<Duration>, DurationError> {
        if self.effective_digest_reflection_policy() != ReflectionPolicy::Always {
            return Ok(None);
        }
        let interval = self
            .spec
            .interval
            .as_deref()
            .unwrap_or(DEFAULT_DIGEST_REFRESH_INTERVAL);
        let interval = parse_duration(interval)?;
        Ok(Some(if interval.is_zero() {
            parse_duration(DEFAULT_DIGEST_REFRESH_INTERVAL)?
        } else {
            interval
        }))
    }
}
