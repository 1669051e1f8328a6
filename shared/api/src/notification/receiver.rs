//! Receiver (`notification.toolkit.fluxcd.io/v1`): a webhook that asks Flux objects to reconcile.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FluxObject;
use crate::duration::INTERVAL_PATTERN;
use crate::meta::LocalObjectReference;
use crate::schema::{conditions, is_false};

/// Prefix of every webhook path; the controller appends hex SHA-256 of token, name and namespace.
pub const WEBHOOK_PATH_PREFIX: &str = "/hook/";
/// `spec.interval` when unset.
pub const DEFAULT_RECEIVER_INTERVAL: &str = "10m";
/// Expected `aud` claim of a `generic-oidc` provider without `audience`.
pub const DEFAULT_OIDC_AUDIENCE: &str = "notification-controller";
/// Reason of `Ready=False` when the token Secret or its `token` key is missing.
pub const TOKEN_NOT_FOUND_REASON: &str = "TokenNotFound";

/// Desired state of a Receiver.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    namespaced,
    status = "ReceiverStatus",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "An incoming webhook that requests the reconciliation of a group of Flux objects.",
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
        "rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)",
        "message": "generic-oidc receivers must define at least one oidcProvider"
    },
    {
        "rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0",
        "message": "oidcProviders can only be set when type is generic-oidc"
    },
    {
        "rule": "self.type != 'generic-oidc' || !has(self.secretRef)",
        "message": "secretRef cannot be set when type is generic-oidc"
    },
    {
        "rule": "self.type == 'generic-oidc' || has(self.secretRef)",
        "message": "secretRef is required when type is not generic-oidc"
    }
]))]
pub struct ReceiverSpec {
    /// Sender of the webhook; decides how a request is authenticated and parsed.
    #[serde(rename = "type")]
    pub type_: ReceiverType,
    /// How often the Secret is re-read; 10m when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = INTERVAL_PATTERN), extend("default" = "10m"))]
    pub interval: Option<String>,
    /// Event types to act on, e.g. `push` (GitHub) or `Push Hook` (GitLab); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// The objects whose reconciliation a valid request asks for.
    pub resources: Vec<ReceiverResource>,
    /// CEL expression over `res` and `req`; objects for which it is false are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,
    /// Secret with the `token` key (and `email`, `audience` for `gcr`); all types but `generic-oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// OIDC issuers that authenticate `generic-oidc` requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
    pub oidc_providers: Vec<OidcProvider>,
    /// Stops handling requests while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// Webhook sender of a Receiver.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiverType {
    Generic,
    GenericHmac,
    GenericOidc,
    Github,
    Gitlab,
    Bitbucket,
    Harbor,
    Dockerhub,
    Quay,
    Gcr,
    Nexus,
    Acr,
    Cdevents,
}

impl ReceiverType {
    /// The `spec.type` value, e.g. `generic-hmac`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::GenericHmac => "generic-hmac",
            Self::GenericOidc => "generic-oidc",
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Bitbucket => "bitbucket",
            Self::Harbor => "harbor",
            Self::Dockerhub => "dockerhub",
            Self::Quay => "quay",
            Self::Gcr => "gcr",
            Self::Nexus => "nexus",
            Self::Acr => "acr",
            Self::Cdevents => "cdevents",
        }
    }
}

/// An object (or, with name `*` and `matchLabels`, a set of objects) a Receiver notifies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version; Flux's default for its source and image kinds when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[schemars(extend("enum" = super::EVENT_SOURCE_KINDS))]
    pub kind: String,
    /// Name of the referent, or `*` for every object matching `matchLabels`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent; the Receiver's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the referents must all carry; requires name `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// CEL expression over `res` and `req`, ANDed with `spec.resourceFilter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// An OIDC issuer that authenticates `generic-oidc` requests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OidcProvider {
    /// Issuer URL; must equal the token's `iss` claim.
    #[serde(rename = "issuerURL")]
    #[schemars(regex(pattern = "^https?://"))]
    pub issuer_url: String,
    /// Expected `aud` claim; `notification-controller` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Named CEL expressions over `claims`, exposed as `vars.<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<OidcVariable>,
    /// CEL expressions that must all be true for a request to be accepted.
    #[schemars(length(min = 1))]
    pub validations: Vec<OidcValidation>,
}

/// A named CEL expression of an OIDC provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OidcVariable {
    /// Variable name (a CEL identifier).
    pub name: String,
    /// CEL expression giving its value.
    pub expression: String,
}

/// A CEL check on the claims of an OIDC token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OidcValidation {
    /// CEL boolean expression.
    pub expression: String,
    /// Returned to the caller when the expression is false.
    pub message: String,
}

/// Observed state of a Receiver.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ReceiverStatus {
    /// Last handled `reconcile.fluxcd.io/requestedAt` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// `/hook/` followed by the hex SHA-256 of token, name and namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
    /// Last generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Receiver {
    /// `spec.interval`, 10 minutes when unset or unparsable.
    pub fn effective_interval(&self) -> Duration {
        self.interval_duration().unwrap_or(Duration::from_secs(600))
    }
}
