//! Alert: which events go to which Provider.

use std::collections::BTreeMap;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CrossNamespaceObjectReference;
use crate::meta::LocalObjectReference;
use crate::schema::is_false;

/// Desired state of an Alert.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Alert",
    plural = "alerts",
    namespaced,
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "Selects events by source, severity and message and sends them to a Provider.",
    derive = "PartialEq",
    crates(
        kube_core = "::kube_core",
        k8s_openapi = "::k8s_openapi",
        schemars = "::schemars",
        serde = "::serde",
        serde_json = "::serde_json"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// The Provider (in the Alert's namespace) that delivers the events.
    pub provider_ref: LocalObjectReference,
    /// `info` sends every event, `error` only errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "info"))]
    pub event_severity: Option<EventSeverityFilter>,
    /// The objects whose events are sent.
    pub event_sources: Vec<CrossNamespaceObjectReference>,
    /// Regular expressions; when set, a message must match one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inclusion_list: Vec<String>,
    /// Metadata added to each event sent; the event's own keys win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_metadata: BTreeMap<String, String>,
    /// Regular expressions; a message matching any of them is not sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusion_list: Vec<String>,
    /// Short description of the impact. Deprecated: use `eventMetadata`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 255))]
    pub summary: String,
    /// Stops sending events while true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// The lowest severity an Alert sends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverityFilter {
    /// Every event.
    #[default]
    Info,
    /// Only errors.
    Error,
}

impl Alert {
    /// `spec.eventSeverity`, defaulting to `info`.
    pub fn severity_filter(&self) -> EventSeverityFilter {
        self.spec.event_severity.unwrap_or_default()
    }
}
