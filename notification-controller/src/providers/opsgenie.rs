//! `opsgenie`: an alert through the Alert API with the `GenieKey` authorization.

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{
    Notifier, OutgoingRequest, ProviderError, Target, address_or, object_title, severity_name,
    token,
};

const DEFAULT_ADDRESS: &str = "https://api.opsgenie.com/v2/alerts";

/// Opsgenie Alert API.
pub struct Opsgenie;

impl Notifier for Opsgenie {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Opsgenie;
        let url = address_or(kind, &target.address, DEFAULT_ADDRESS)?;
        let key = token(kind, target)?;
        let mut details = event.metadata.clone();
        details.insert("severity".to_owned(), severity_name(event).to_owned());
        let message: String = object_title(event).chars().take(130).collect();
        let body = json!({
            "message": message,
            "description": event.message,
            "details": details,
        });
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?
                .header("Authorization", format!("GenieKey {key}")),
        ))
    }
}
