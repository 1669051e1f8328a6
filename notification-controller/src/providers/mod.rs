//! Provider implementations: each turns an event into the HTTP request its service documents.
//!
//! One module per type; [`notifier`] maps a `spec.type` to its [`Notifier`]. Requests are built
//! here and sent by `crate::dispatch`, so every type shares retries, timeouts, proxy and TLS.

mod alertmanager;
mod azuredevops;
mod bitbucket;
mod chat;
mod commit;
mod discord;
mod generic;
mod gitea;
mod github;
mod gitlab;
mod googlechat;
mod grafana;
mod matrix;
mod msteams;
mod opsgenie;
mod pagerduty;
mod sentry;
mod slack;
mod telegram;
mod webex;

use std::collections::BTreeMap;
use std::fmt;

use reqwest::{Method, Url};
use serde::Serialize;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::{EventSeverity, NotificationEvent};

/// Where and as whom a Provider delivers; built from its spec and Secret at dispatch time.
#[derive(Clone, Default)]
pub struct Target {
    /// The effective address: the Secret's `address`, else `spec.address`.
    pub address: String,
    pub channel: String,
    pub username: String,
    /// The Secret's `token` (HMAC key for generic-hmac).
    pub token: Option<String>,
    /// The Secret's `password` (with `username` for basic auth).
    pub password: Option<String>,
    /// Extra headers from the Secret's `headers` key.
    pub headers: BTreeMap<String, String>,
    /// The Provider's UID, part of the default commit-status context.
    pub provider_uid: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("channel", &self.channel)
            .field("username", &self.username)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One HTTP request to a provider's service.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", &self.method)
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

impl OutgoingRequest {
    /// A request with a JSON body.
    pub fn json(method: Method, url: Url, body: &impl Serialize) -> Result<Self, ProviderError> {
        Ok(Self {
            method,
            url,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: serde_json::to_vec(body).map_err(ProviderError::Encode)?,
        })
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>` when a token is set.
    pub fn bearer(self, token: Option<&str>) -> Self {
        match token.filter(|token| !token.is_empty()) {
            Some(token) => self.header("Authorization", format!("Bearer {token}")),
            None => self,
        }
    }
}

/// Building a provider request failed; messages never contain addresses or credentials.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the {kind} provider needs an address (spec.address or the Secret's address key)")]
    MissingAddress { kind: ProviderType },
    #[error("the {kind} provider's address is not a valid URL: {reason}")]
    InvalidAddress { kind: ProviderType, reason: String },
    #[error("the {kind} provider needs a token in the Secret referenced by spec.secretRef")]
    MissingToken { kind: ProviderType },
    #[error("the {kind} provider needs spec.channel ({what})")]
    MissingChannel {
        kind: ProviderType,
        what: &'static str,
    },
    #[error("encoding the request body failed: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Builds the request a provider type sends for one event.
pub trait Notifier: Send + Sync {
    /// The request for `event`, or `None` when this type does not report such an event.
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError>;
}

/// The notifier of `kind`, or `None` when Sluice does not implement that type.
pub fn notifier(kind: ProviderType) -> Option<&'static dyn Notifier> {
    use ProviderType as T;
    Some(match kind {
        T::Generic => &generic::Generic { hmac: false },
        T::GenericHmac => &generic::Generic { hmac: true },
        T::Slack => &slack::Slack,
        T::Rocket => &chat::Rocket,
        T::Discord => &discord::Discord,
        T::MsTeams => &msteams::MsTeams,
        T::GoogleChat => &googlechat::GoogleChat,
        T::Webex => &webex::Webex,
        T::Telegram => &telegram::Telegram,
        T::Matrix => &matrix::Matrix,
        T::Opsgenie => &opsgenie::Opsgenie,
        T::PagerDuty => &pagerduty::PagerDuty,
        T::AlertManager => &alertmanager::AlertManager,
        T::Grafana => &grafana::Grafana,
        T::Sentry => &sentry::Sentry,
        T::GitHub => &github::GitHub,
        T::GitLab => &gitlab::GitLab,
        T::Gitea => &gitea::Gitea,
        T::Bitbucket => &bitbucket::Bitbucket,
        T::BitbucketServer => &bitbucket::BitbucketServer,
        T::AzureDevOps => &azuredevops::AzureDevOps,
        _ => return None,
    })
}

/// `sha256=<hex>`: the `X-Signature` a `generic-hmac` Provider sends for `body`.
pub fn generic_signature(key: &[u8], body: &[u8]) -> String {
    generic::signature(key, body)
}

/// Whether Sluice implements `kind`.
pub fn is_supported(kind: ProviderType) -> bool {
    notifier(kind).is_some()
}

/// The address parsed as an http(s) URL; errors name the type, never the address.
pub(crate) fn address_url(kind: ProviderType, address: &str) -> Result<Url, ProviderError> {
    let address = address.trim();
    if address.is_empty() {
        return Err(ProviderError::MissingAddress { kind });
    }
    parse_url(kind, address)
}

/// `address`, or `default` when it is empty, parsed as an http(s) URL.
pub(crate) fn address_or(
    kind: ProviderType,
    address: &str,
    default: &str,
) -> Result<Url, ProviderError> {
    let address = address.trim();
    parse_url(kind, if address.is_empty() { default } else { address })
}

fn parse_url(kind: ProviderType, address: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(address).map_err(|error| ProviderError::InvalidAddress {
        kind,
        reason: error.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::InvalidAddress {
            kind,
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    Ok(url)
}

/// The token, required.
pub(crate) fn token(kind: ProviderType, target: &Target) -> Result<&str, ProviderError> {
    target
        .token
        .as_deref()
        .filter(|token| !token.is_empty())
        .ok_or(ProviderError::MissingToken { kind })
}

/// `Kind/name.namespace`, how Flux's notifiers title an event.
pub(crate) fn object_title(event: &NotificationEvent) -> String {
    let object = &event.involved_object;
    format!(
        "{}/{}.{}",
        object.kind.as_deref().unwrap_or_default(),
        object.name.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default()
    )
}

/// Whether the event is an error.
pub(crate) fn is_error(event: &NotificationEvent) -> bool {
    event.severity == EventSeverity::Error
}

/// `info` or `error`.
pub(crate) fn severity_name(event: &NotificationEvent) -> &'static str {
    if is_error(event) { "error" } else { "info" }
}

/// The event as plain text: title, message and metadata lines.
pub(crate) fn plain_text(event: &NotificationEvent) -> String {
    let mut text = format!("{}\n{}", object_title(event), event.message);
    for (key, value) in &event.metadata {
        text.push_str(&format!("\n{key}: {value}"));
    }
    text
}

#[cfg(test)]
mod tests;
