//! `notification.toolkit.fluxcd.io`: Provider and Alert (`v1beta3`, static objects without a
//! status, as in Flux 2.x) and Receiver (`v1`), with the references they share.

pub mod alert;
pub mod provider;
pub mod receiver;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use alert::{Alert, AlertSpec, EventSeverityFilter};
pub use provider::{Provider, ProviderSpec, ProviderType};
pub use receiver::{
    DEFAULT_OIDC_AUDIENCE, DEFAULT_RECEIVER_INTERVAL, OidcProvider, OidcValidation, OidcVariable,
    Receiver, ReceiverResource, ReceiverSpec, ReceiverStatus, ReceiverType, TOKEN_NOT_FOUND_REASON,
    WEBHOOK_PATH_PREFIX,
};

/// API group of the notification kinds.
pub const GROUP: &str = "notification.toolkit.fluxcd.io";
/// API version of Provider and Alert.
pub const V1BETA3: &str = "v1beta3";
/// Kinds an Alert's `eventSources` (and a Receiver's `resources`) may name.
pub const EVENT_SOURCE_KINDS: &[&str] = &[
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
];

/// A typed object in any namespace, optionally every object of a kind with matching labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[schemars(extend("enum" = EVENT_SOURCE_KINDS))]
    pub kind: String,
    /// Name of the referent; `*` selects every object of the kind.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent; the referrer's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the referent must carry (all of them); requires `name: '*'`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod receiver_tests;
#[cfg(test)]
mod tests;
