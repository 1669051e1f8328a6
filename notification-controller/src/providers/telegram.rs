//! `telegram`: the Bot API's `sendMessage` (the bot token is part of the URL, never logged).

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_or, plain_text, token};

const DEFAULT_ADDRESS: &str = "https://api.telegram.org";

/// Telegram: `spec.channel` is the chat ID.
pub struct Telegram;

impl Notifier for Telegram {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Telegram;
        let mut url = address_or(kind, &target.address, DEFAULT_ADDRESS)?;
        let token = token(kind, target)?;
        if target.channel.is_empty() {
            return Err(ProviderError::MissingChannel {
                kind,
                what: "the chat ID",
            });
        }
        let path = format!(
            "{}/bot{token}/sendMessage",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        let body = json!({"chat_id": target.channel, "text": plain_text(event)});
        Ok(Some(OutgoingRequest::json(Method::POST, url, &body)?))
    }
}
