//! `pagerduty`: Events API v2; errors trigger an incident, other events resolve it.

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_or, is_error, object_title};

const DEFAULT_ADDRESS: &str = "https://events.pagerduty.com";

/// PagerDuty: `spec.channel` is the integration's routing key.
pub struct PagerDuty;

impl Notifier for PagerDuty {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::PagerDuty;
        let mut url = address_or(kind, &target.address, DEFAULT_ADDRESS)?;
        if target.channel.is_empty() {
            return Err(ProviderError::MissingChannel {
                kind,
                what: "the routing key",
            });
        }
        url.set_path("/v2/enqueue");
        let object = &event.involved_object;
        let body = json!({
            "routing_key": target.channel,
            "event_action": if is_error(event) { "trigger" } else { "resolve" },
            "dedup_key": object_title(event),
            "payload": {
                "summary": format!("{}: {}", object_title(event), event.message),
                "source": event.reporting_controller,
                "severity": if is_error(event) { "error" } else { "info" },
                "timestamp": event.timestamp,
                "component": object.name,
                "group": object.kind,
                "class": event.reason,
                "custom_details": event.metadata,
            },
        });
        Ok(Some(OutgoingRequest::json(Method::POST, url, &body)?))
    }
}
