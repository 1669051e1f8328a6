//! `webex`: a markdown message to a room through the Webex messages API.

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_or, object_title, token};

const DEFAULT_ADDRESS: &str = "https://webexapis.com/v1/messages";

/// Webex: `spec.channel` is the room ID, the Secret's token the bot token.
pub struct Webex;

impl Notifier for Webex {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Webex;
        let url = address_or(kind, &target.address, DEFAULT_ADDRESS)?;
        let token = token(kind, target)?;
        if target.channel.is_empty() {
            return Err(ProviderError::MissingChannel {
                kind,
                what: "the room ID",
            });
        }
        let mut markdown = format!("**{}**\n\n{}", object_title(event), event.message);
        for (key, value) in &event.metadata {
            markdown.push_str(&format!("\n>**{key}**: {value}"));
        }
        let body = json!({"roomId": target.channel, "markdown": markdown});
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?.bearer(Some(token)),
        ))
    }
}
