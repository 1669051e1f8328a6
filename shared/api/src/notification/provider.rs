//! Provider: where and how an Alert's events are delivered.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{DurationError, INTERVAL_PATTERN, TIMEOUT_PATTERN, parse_duration};
use crate::meta::LocalObjectReference;
use crate::schema::is_false;

/// Delivery timeout when `spec.timeout` is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The provider types whose `commitStatusExpr` Flux accepts (the git commit-status types).
pub const COMMIT_STATUS_TYPES: &[&str] = &[
    "github",
    "gitlab",
    "gitea",
    "bitbucketserver",
    "bitbucket",
    "azuredevops",
];

/// Desired state of a Provider.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Provider",
    plural = "providers",
    namespaced,
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "Where an Alert's events are delivered: a chat, incident or git commit-status service, or a generic webhook.",
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
        "rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)",
        "message": "spec.commitStatusExpr is accepted only for the provider types github, gitlab, gitea, bitbucketserver, bitbucket and azuredevops"
    }
]))]
pub struct ProviderSpec {
    /// The provider implementation.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ProviderType::NAMES))]
    pub type_: String,
    /// Deprecated and unused in v1beta3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// Destination channel (chat room, topic, ...), where the type has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048))]
    pub channel: String,
    /// Name events are posted under, where the type has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048))]
    pub username: String,
    /// Endpoint: a URL for webhook types, a repository URL for commit-status types.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048))]
    pub address: String,
    /// Timeout of one delivery; 15s when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIMEOUT_PATTERN))]
    pub timeout: Option<String>,
    /// HTTP/S proxy URL. Deprecated: use `proxySecretRef`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = r"^(http|https)://.*$"), length(max = 2048))]
    pub proxy: String,
    /// Secret with the proxy `address` and optional `username`/`password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Secret with credentials: `token`, `address`, `username`/`password`, `headers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount for cloud workload identity (azureeventhub, azuredevops, googlepubsub).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Secret with TLS material: `ca.crt`, and `tls.crt` with `tls.key` for client auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Stops delivering events while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// CEL expression giving the commit-status context (commit-status types only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit_status_expr: String,
}

impl Provider {
    /// Delivery timeout: `spec.timeout`, else 15 seconds.
    pub fn effective_timeout(&self) -> Result<Duration, DurationError> {
        match &self.spec.timeout {
            Some(timeout) => parse_duration(timeout),
            None => Ok(DEFAULT_TIMEOUT),
        }
    }

    /// `spec.type` parsed; `None` for a type this version of the API does not know.
    pub fn provider_type(&self) -> Option<ProviderType> {
        self.spec.type_.parse().ok()
    }
}

/// Every provider type Flux's v1beta3 API accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderType {
    Slack,
    Discord,
    MsTeams,
    Rocket,
    Generic,
    GenericHmac,
    GitHub,
    GitLab,
    Gitea,
    GiteaPullRequestComment,
    BitbucketServer,
    Bitbucket,
    AzureDevOps,
    GoogleChat,
    GooglePubSub,
    Webex,
    Sentry,
    AzureEventHub,
    Telegram,
    Lark,
    Matrix,
    Opsgenie,
    AlertManager,
    Grafana,
    GitHubDispatch,
    GitHubPullRequestComment,
    GitLabMergeRequestComment,
    PagerDuty,
    DataDog,
    Nats,
    Zulip,
    Otel,
}

/// `spec.type` is not one of Flux's provider types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProviderType(pub String);

impl fmt::Display for UnknownProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown provider type {:?}", self.0)
    }
}

impl std::error::Error for UnknownProviderType {}

impl ProviderType {
    /// Every type, in Flux's CRD order.
    pub const ALL: [ProviderType; 32] = [
        Self::Slack,
        Self::Discord,
        Self::MsTeams,
        Self::Rocket,
        Self::Generic,
        Self::GenericHmac,
        Self::GitHub,
        Self::GitLab,
        Self::Gitea,
        Self::GiteaPullRequestComment,
        Self::BitbucketServer,
        Self::Bitbucket,
        Self::AzureDevOps,
        Self::GoogleChat,
        Self::GooglePubSub,
        Self::Webex,
        Self::Sentry,
        Self::AzureEventHub,
        Self::Telegram,
        Self::Lark,
        Self::Matrix,
        Self::Opsgenie,
        Self::AlertManager,
        Self::Grafana,
        Self::GitHubDispatch,
        Self::GitHubPullRequestComment,
        Self::GitLabMergeRequestComment,
        Self::PagerDuty,
        Self::DataDog,
        Self::Nats,
        Self::Zulip,
        Self::Otel,
    ];

    /// The `spec.type` values, in the same order as [`ProviderType::ALL`].
    pub const NAMES: [&'static str; 32] = [
        "slack",
        "discord",
        "msteams",
        "rocket",
        "generic",
        "generic-hmac",
        "github",
        "gitlab",
        "gitea",
        "giteapullrequestcomment",
        "bitbucketserver",
        "bitbucket",
        "azuredevops",
        "googlechat",
        "googlepubsub",
        "webex",
        "sentry",
        "azureeventhub",
        "telegram",
        "lark",
        "matrix",
        "opsgenie",
        "alertmanager",
        "grafana",
        "githubdispatch",
        "githubpullrequestcomment",
        "gitlabmergerequestcomment",
        "pagerduty",
        "datadog",
        "nats",
        "zulip",
        "otel",
    ];

    /// The `spec.type` value.
    pub fn as_str(self) -> &'static str {
        let index = Self::ALL.iter().position(|t| *t == self).unwrap_or(0);
        Self::NAMES[index]
    }

    /// A git commit-status type (github, gitlab, gitea, bitbucket, bitbucketserver, azuredevops).
    pub fn is_commit_status(self) -> bool {
        COMMIT_STATUS_TYPES.contains(&self.as_str())
    }

    /// A pull/merge-request comment type.
    pub fn is_change_request(self) -> bool {
        matches!(
            self,
            Self::GitHubPullRequestComment
                | Self::GitLabMergeRequestComment
                | Self::GiteaPullRequestComment
        )
    }
}

impl FromStr for ProviderType {
    type Err = UnknownProviderType;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|name| *name == value)
            .map(|index| Self::ALL[index])
            .ok_or_else(|| UnknownProviderType(value.to_owned()))
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
