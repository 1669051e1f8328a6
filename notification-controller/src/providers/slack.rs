//! `slack`: an attachment per event to an incoming webhook or `chat.postMessage` (with a token).

use reqwest::{Method, Url};
use serde_json::{Value, json};
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{
    Notifier, OutgoingRequest, ProviderError, Target, address_url, is_error, object_title,
};

/// Slack's message shape (also what Rocket.Chat and Discord's `/slack` endpoint accept).
pub struct Slack;

impl Notifier for Slack {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let url = address_url(ProviderType::Slack, &target.address)?;
        request(url, target, event).map(Some)
    }
}

/// A Slack-compatible request to `url`, with the token as bearer when set.
pub(super) fn request(
    url: Url,
    target: &Target,
    event: &NotificationEvent,
) -> Result<OutgoingRequest, ProviderError> {
    let body = payload(target, event);
    Ok(OutgoingRequest::json(Method::POST, url, &body)?.bearer(target.token.as_deref()))
}

/// The Slack message: channel, username and one attachment with the metadata as fields.
pub(super) fn payload(target: &Target, event: &NotificationEvent) -> Value {
    let fields: Vec<Value> = event
        .metadata
        .iter()
        .map(|(key, value)| json!({"title": key, "value": value, "short": false}))
        .collect();
    let mut attachment = json!({
        "color": if is_error(event) { "danger" } else { "good" },
        "author_name": object_title(event),
        "text": event.message,
        "mrkdwn_in": ["text"],
    });
    if !fields.is_empty() {
        attachment["fields"] = Value::Array(fields);
    }
    let mut body = json!({"attachments": [attachment]});
    if !target.channel.is_empty() {
        body["channel"] = json!(target.channel);
    }
    if !target.username.is_empty() {
        body["username"] = json!(target.username);
    }
    body
}
