//! Events: Kubernetes Events (core/v1, as Flux writes them) plus Flux's notification-controller HTTP API.
//!
//! Messages are caller-written strings; nothing here accepts Secrets or logs event messages, so
//! keep credentials out of the messages you pass in.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use tokio_util::task::TaskTracker;

use crate::core_events::CoreEventRecorder;

/// Annotation prefix whose entries Flux copies from the object into event metadata.
pub const EVENT_ANNOTATION_PREFIX: &str = "event.toolkit.fluxcd.io/";
/// Metadata key suffix for the revision an event refers to.
pub const METADATA_REVISION: &str = "revision";
/// Metadata key suffix for an emitter-defined token that distinguishes otherwise equal events.
pub const METADATA_TOKEN: &str = "token";

/// Event severity as Flux defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    /// Recorded as a Normal Kubernetes Event only; never forwarded to notification-controller.
    Trace,
    /// Normal Kubernetes Event, forwarded with severity `info`.
    Info,
    /// Warning Kubernetes Event, forwarded with severity `error`.
    Error,
}

/// An event about one object, before it is addressed to a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub severity: EventSeverity,
    /// Short PascalCase reason, at most 128 characters.
    pub reason: String,
    pub message: String,
    /// The action taken (Kubernetes Events `action`), e.g. "Reconcile".
    pub action: String,
    /// Metadata keyed by suffix; sinks qualify keys with the object's API group (`<group>/<suffix>`).
    pub metadata: BTreeMap<String, String>,
}

impl ObjectEvent {
    /// An event with action "Reconcile" and no metadata.
    pub fn new(
        severity: EventSeverity,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            reason: reason.into(),
            message: message.into(),
            action: "Reconcile".to_owned(),
            metadata: BTreeMap::new(),
        }
    }

    /// An `info` event.
    pub fn info(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventSeverity::Info, reason, message)
    }

    /// An `error` event.
    pub fn error(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventSeverity::Error, reason, message)
    }

    /// A `trace` event: Kubernetes only.
    pub fn trace(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventSeverity::Trace, reason, message)
    }

    /// Replaces the Kubernetes Events action.
    pub fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    /// Adds `<group>/revision` metadata.
    pub fn with_revision(self, revision: impl Into<String>) -> Self {
        self.with_metadata(METADATA_REVISION, revision)
    }

    /// Adds `<group>/token` metadata.
    pub fn with_token(self, token: impl Into<String>) -> Self {
        self.with_metadata(METADATA_TOKEN, token)
    }

    /// Adds `<group>/<suffix>` metadata.
    pub fn with_metadata(mut self, suffix: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(suffix.into(), value.into());
        self
    }
}

/// The JSON body notification-controller accepts (`event.toolkit.fluxcd.io/v1beta1` Event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationEvent {
    pub involved_object: ObjectReference,
    pub severity: EventSeverity,
    pub timestamp: Time,
    pub message: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

impl NotificationEvent {
    /// Addresses `event` to `object`: qualifies metadata keys and copies `event.toolkit.fluxcd.io/` annotations.
    pub fn for_object<K>(object: &K, event: &ObjectEvent, controller: &str, instance: &str) -> Self
    where
        K: Resource,
        K::DynamicType: Default,
    {
        let dynamic_type = K::DynamicType::default();
        let group = K::group(&dynamic_type);
        let mut metadata: BTreeMap<String, String> = object
            .annotations()
            .iter()
            .filter(|(key, _)| key.starts_with(EVENT_ANNOTATION_PREFIX))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        for (suffix, value) in &event.metadata {
            let key = if group.is_empty() {
                suffix.clone()
            } else {
                format!("{group}/{suffix}")
            };
            metadata.insert(key, value.clone());
        }
        Self {
            involved_object: involved_object(object),
            severity: event.severity,
            timestamp: Time(Timestamp::now()),
            message: event.message.clone(),
            reason: event.reason.clone(),
            metadata,
            reporting_controller: controller.to_owned(),
            reporting_instance: instance.to_owned(),
        }
    }
}

/// The object reference Flux sends: kind, namespace, name, uid, apiVersion, resourceVersion.
pub fn involved_object<K>(object: &K) -> ObjectReference
where
    K: Resource,
    K::DynamicType: Default,
{
    ObjectReference {
        resource_version: object.meta().resource_version.clone(),
        ..object.object_ref(&K::DynamicType::default())
    }
}

/// Delivering an event failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "the events address {address:?} is not a valid http(s) URL: {reason}; fix --events-addr or leave it empty"
    )]
    InvalidAddress { address: String, reason: String },
    #[error("building the HTTP client for events failed: {0}; check the TLS setup of the process")]
    HttpClient(#[source] reqwest::Error),
    #[error(
        "notification-controller rejected the event with HTTP {status}; not retried, check its logs"
    )]
    Rejected { status: u16 },
    #[error(
        "posting the event failed after {attempts} attempts: {last_error}; check that notification-controller is reachable at --events-addr"
    )]
    Unreachable { attempts: u32, last_error: String },
}

/// How many times and how long to try delivering one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub attempts: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Delay before the second attempt; doubles per attempt.
    pub first_backoff: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            timeout: Duration::from_secs(5),
            first_backoff: Duration::from_millis(250),
        }
    }
}

/// A client for notification-controller's event endpoint (`POST <events-addr>`).
#[derive(Debug, Clone)]
pub struct NotificationClient {
    http: reqwest::Client,
    url: reqwest::Url,
    policy: DeliveryPolicy,
}

impl NotificationClient {
    /// A client posting to `address` (an http or https URL).
    pub fn new(address: &str, policy: DeliveryPolicy) -> Result<Self, EventError> {
        let invalid = |reason: String| EventError::InvalidAddress {
            address: address.to_owned(),
            reason,
        };
        let url = reqwest::Url::parse(address).map_err(|error| invalid(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .build()
            .map_err(EventError::HttpClient)?;
        Ok(Self { http, url, policy })
    }

    /// Posts one event, retrying connection failures and 5xx; 4xx (including 429) is final.
    pub async fn send(&self, event: &NotificationEvent) -> Result<(), EventError> {
        let attempts = self.policy.attempts.max(1);
        let mut backoff = self.policy.first_backoff;
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            match self.http.post(self.url.clone()).json(event).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_server_error() => {
                    last_error = format!("HTTP {}", response.status().as_u16());
                }
                Ok(response) => {
                    return Err(EventError::Rejected {
                        status: response.status().as_u16(),
                    });
                }
                Err(error) => last_error = error.without_url().to_string(),
            }
            tracing::debug!(attempt, reason = %event.reason, error = %last_error, "event delivery attempt failed");
        }
        Err(EventError::Unreachable {
            attempts,
            last_error,
        })
    }
}

/// Records events as Kubernetes Events and, unless trace, forwards them to notification-controller.
///
/// Forwarding runs in the background so a slow endpoint never holds up a reconcile; call
/// [`EventSink::flush`] on shutdown to wait for deliveries still in flight.
#[derive(Clone)]
pub struct EventSink {
    recorder: std::sync::Arc<CoreEventRecorder>,
    notifier: Option<NotificationClient>,
    controller: String,
    instance: String,
    deliveries: TaskTracker,
}

impl EventSink {
    /// A sink reporting as `controller`/`instance`; `events_url` of `None` disables forwarding.
    pub fn new(
        client: Client,
        controller: &str,
        instance: &str,
        events_url: Option<&str>,
    ) -> Result<Self, EventError> {
        let notifier = events_url
            .map(|url| NotificationClient::new(url, DeliveryPolicy::default()))
            .transpose()?;
        Ok(Self {
            recorder: std::sync::Arc::new(CoreEventRecorder::new(client, controller, instance)),
            notifier,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            deliveries: TaskTracker::new(),
        })
    }

    /// Records `event` for `object`; failures are logged, never returned.
    pub async fn publish<K>(&self, object: &K, event: ObjectEvent)
    where
        K: Resource,
        K::DynamicType: Default,
    {
        let notification =
            NotificationEvent::for_object(object, &event, &self.controller, &self.instance);
        let type_ = match event.severity {
            EventSeverity::Error => "Warning",
            EventSeverity::Info | EventSeverity::Trace => "Normal",
        };
        let reference = &notification.involved_object;
        let recorded = self.recorder.record(
            reference,
            type_,
            &event.reason,
            &event.message,
            notification.metadata.clone(),
        );
        if let Err(error) = recorded.await {
            tracing::warn!(
                kind = reference.kind.as_deref().unwrap_or_default(),
                namespace = reference.namespace.as_deref().unwrap_or_default(),
                name = reference.name.as_deref().unwrap_or_default(),
                reason = %event.reason,
                %error,
                "recording a Kubernetes Event failed"
            );
        }
        if event.severity == EventSeverity::Trace {
            return;
        }
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        self.deliveries.spawn(async move {
            if let Err(error) = notifier.send(&notification).await {
                let object = &notification.involved_object;
                tracing::warn!(
                    kind = object.kind.as_deref().unwrap_or_default(),
                    namespace = object.namespace.as_deref().unwrap_or_default(),
                    name = object.name.as_deref().unwrap_or_default(),
                    reason = %notification.reason,
                    %error,
                    "forwarding an event to notification-controller failed"
                );
            }
        });
    }

    /// Waits until background deliveries finish; publishing afterwards still works.
    pub async fn flush(&self) {
        self.deliveries.close();
        self.deliveries.wait().await;
        self.deliveries.reopen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use serde_json::json;

    fn config_map() -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("app".into()),
                namespace: Some("apps".into()),
                uid: Some("1234".into()),
                resource_version: Some("42".into()),
                annotations: Some(
                    [
                        (
                            "event.toolkit.fluxcd.io/deployment".to_owned(),
                            "blue".to_owned(),
                        ),
                        ("unrelated/annotation".to_owned(), "x".to_owned()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn notification_json_has_flux_shape() {
        let event = ObjectEvent::error("ReconciliationFailed", "apply failed")
            .with_revision("main@sha1:abc")
            .with_token("t-1");
        let notification =
            NotificationEvent::for_object(&config_map(), &event, "kustomize-controller", "pod-1");
        let mut value = serde_json::to_value(&notification).expect("serializable");
        let timestamp = value["timestamp"].take();
        let timestamp = timestamp.as_str().expect("timestamp is a string");
        assert!(
            timestamp.len() == 20 && timestamp.ends_with('Z'),
            "RFC3339 seconds: {timestamp}"
        );
        assert_eq!(
            value,
            json!({
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "app",
                    "namespace": "apps",
                    "uid": "1234",
                    "resourceVersion": "42",
                },
                "severity": "error",
                "timestamp": null,
                "message": "apply failed",
                "reason": "ReconciliationFailed",
                "metadata": {
                    "revision": "main@sha1:abc",
                    "token": "t-1",
                    "event.toolkit.fluxcd.io/deployment": "blue",
                },
                "reportingController": "kustomize-controller",
                "reportingInstance": "pod-1",
            })
        );
    }

    #[test]
    fn metadata_keys_are_qualified_with_the_api_group() {
        let deployment = k8s_openapi::api::apps::v1::Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("apps".into()),
                ..ObjectMeta::default()
            },
            ..Default::default()
        };
        let event = ObjectEvent::info("Progressing", "rolling out").with_token("t-2");
        let notification = NotificationEvent::for_object(&deployment, &event, "c", "i");
        assert_eq!(
            notification.metadata.get("apps/token").map(String::as_str),
            Some("t-2")
        );
        assert_eq!(
            notification.involved_object.api_version.as_deref(),
            Some("apps/v1")
        );
    }

    #[test]
    fn round_trips_through_json() {
        let notification = NotificationEvent::for_object(
            &config_map(),
            &ObjectEvent::info("Succeeded", "ok"),
            "source-controller",
            "",
        );
        let text = serde_json::to_string(&notification).expect("serializable");
        assert!(!text.contains("reportingInstance"));
        let parsed: NotificationEvent = serde_json::from_str(&text).expect("parses");
        assert_eq!(parsed.severity, EventSeverity::Info);
        assert_eq!(parsed.reason, "Succeeded");
    }

    #[test]
    fn rejects_non_http_addresses() {
        for address in ["not a url", "ftp://host/", "unix:///tmp/sock"] {
            assert!(matches!(
                NotificationClient::new(address, DeliveryPolicy::default()),
                Err(EventError::InvalidAddress { .. })
            ));
        }
    }
}
