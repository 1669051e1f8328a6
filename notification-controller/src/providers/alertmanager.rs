//! `alertmanager`: one firing alert posted to Alertmanager's `/api/v2/alerts`.

use reqwest::Method;
use serde_json::json;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{Notifier, OutgoingRequest, ProviderError, Target, address_url, severity_name};

/// Prometheus Alertmanager.
pub struct AlertManager;

impl Notifier for AlertManager {
    fn build(
        &self,
        target: &Target,
        event: &NotificationEvent,
    ) -> Result<Option<OutgoingRequest>, ProviderError> {
        let url = address_url(ProviderType::AlertManager, &target.address)?;
        let object = &event.involved_object;
        let kind = object.kind.clone().unwrap_or_default();
        let mut labels = event.metadata.clone();
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(summary) = labels.remove("summary") {
            annotations.insert("summary".to_owned(), summary);
        }
        annotations.insert("message".to_owned(), event.message.clone());
        labels.insert(
            "alertname".to_owned(),
            format!("Flux{kind}{}", event.reason),
        );
        labels.insert("severity".to_owned(), severity_name(event).to_owned());
        labels.insert("reason".to_owned(), event.reason.clone());
        labels.insert("kind".to_owned(), kind);
        labels.insert("name".to_owned(), object.name.clone().unwrap_or_default());
        labels.insert(
            "namespace".to_owned(),
            object.namespace.clone().unwrap_or_default(),
        );
        let body = json!([{
            "labels": labels,
            "annotations": annotations,
            "startsAt": event.timestamp,
        }]);
        Ok(Some(
            OutgoingRequest::json(Method::POST, url, &body)?.bearer(target.token.as_deref()),
        ))
    }
}
