//! `msteams`: an Adaptive Card posted to a Teams Workflows (Power Automate) webhook.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{
    Notifier, OutgoingRequest, ProviderError, Target, address_url, is_error, object_title,
};

/// Microsoft Teams.
pub struct MsTeams;

impl Notifier for MsTeams {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let url = address_url(ProviderType::MsTeams, &target.address)?;
        let facts: Vec<Value> = event
            .metadata
            .iter()
            .map(|(key, value)| json!({"title": key, "value": value}))
            .collect();
        let card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": object_title(event),
                    "weight": "bolder",
                    "size": "medium",
                    "color": if is_error(event) { "attention" } else { "good" },
                },
                {"type": "TextBlock", "text": event.message, "wrap": true},
                {"type": "FactSet", "facts": facts},
            ],
        });
        let body = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": card,
            }],
        });
        Ok(Some(OutgoingRequest::json(Method::POST, url, &body)?))
    }
}
