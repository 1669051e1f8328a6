//! `googlechat`: a card message posted to a Google Chat space webhook.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, object_title};

/// Google Chat incoming webhook.
pub struct GoogleChat;

impl Notifier for GoogleChat {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let url = address_url(ProviderType::GoogleChat, &target.address)?;
        let mut widgets = vec![json!({"textParagraph": {"text": event.message}})];
        widgets.extend(
            event
                .metadata
                .iter()
                .map(|(key, value)| json!({"decoratedText": {"topLabel": key, "text": value}})),
        );
        let body = json!({
            "cardsV2": [{
                "cardId": "flux-event",
                "card": {
                    "header": {"title": object_title(event), "subtitle": event.reason},
                    "sections": [{"widgets": Value::Array(widgets)}],
                },
            }],
        });
        Ok(Some(OutgoingRequest::json(Method::POST, url, &body)?))
    }
}
