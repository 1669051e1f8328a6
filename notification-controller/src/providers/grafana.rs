//! `grafana`: an annotation through Grafana's `/api/annotations`.

use base64::Engine;
use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, object_title};

/// Grafana annotations, with a bearer token or basic auth from the Secret.
pub struct Grafana;

impl Notifier for Grafana {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let url = address_url(ProviderType::Grafana, &target.address)?;
        let mut tags = vec![
            "flux".to_owned(),
            event.reporting_controller.clone(),
            event.reason.clone(),
        ];
        tags.extend(
            event
                .metadata
                .iter()
                .map(|(key, value)| format!("{key}: {value}")),
        );
        let millis = event.timestamp.0.as_millisecond();
        let body = json!({
            "time": millis,
            "text": format!("{}: {}", object_title(event), event.message),
            "tags": tags,
        });
        let request = OutgoingRequest::json(Method::POST, url, &body)?;
        Ok(Some(match (&target.token, &target.password) {
            (Some(_), _) => request.bearer(target.token.as_deref()),
            (None, Some(password)) => {
                let credentials = format!("{}:{password}", target.username);
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                request.header("Authorization", format!("Basic {encoded}"))
            }
            (None, None) => request,
        }))
    }
}
