//! `sentry`: an event posted to the project named by the DSN in `address`.

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{
    Notifier, OutgoingRequest, ProviderError, Target, address_url, object_title, severity_name,
};

/// Sentry: `address` is the DSN (`https://<key>@<host>/<project>`), `channel` the environment.
pub struct Sentry;

impl Notifier for Sentry {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let kind = ProviderType::Sentry;
        let mut url = address_url(kind, &target.address)?;
        let key = url.username().to_owned();
        let project = url.path().trim_matches('/').to_owned();
        if key.is_empty() || project.is_empty() {
            return Err(ProviderError::InvalidAddress {
                kind,
                reason: "a DSN has the form https://<key>@<host>/<project>".to_owned(),
            });
        }
        let _ = url.set_username("");
        url.set_path(&format!("/api/{project}/store/"));
        let body_for_id = format!("{}{}{}", object_title(event), event.message, event.reason);
        let event_id = hex::encode(&Sha256::digest(body_for_id.as_bytes())[..16]);
        let object = &event.involved_object;
        let mut body = json!({
            "event_id": event_id,
            "timestamp": event.timestamp,
            "level": severity_name(event),
            "platform": "other",
            "logger": event.reporting_controller,
            "message": {"formatted": event.message},
            "tags": {
                "kind": object.kind,
                "name": object.name,
                "namespace": object.namespace,
                "reason": event.reason,
            },
            "extra": event.metadata,
        });
        if !target.channel.is_empty() {
            body["environment"] = json!(target.channel);
        }
        let auth = format!("Sentry sentry_version=7, sentry_key={key}, sentry_client=sluice/0.1");
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?.header("X-Sentry-Auth", auth),
        ))
    }
}
