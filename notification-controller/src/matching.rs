//! Which Alerts an event matches: suspend, severity, `eventSources` (kind, name or `*`,
//! namespace, `matchLabels`), then `inclusionList` and `exclusionList`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use regex::Regex;
use sluice_api::notification::{Alert, CrossNamespaceObjectReference, EventSeverityFilter};
use sluice_runtime::events::{EventSeverity, NotificationEvent};

/// Compiled regexes and discovered kinds kept at most.
const CACHE_LIMIT: usize = 1024;

/// Whether one `eventSources` entry selects the event's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMatch {
    No,
    Yes,
    /// Selected if the object carries these labels.
    IfLabels(BTreeMap<String, String>),
}

/// Matches `source` (namespace defaulting to the Alert's) against the event's object.
pub fn source_matches(
    source: &CrossNamespaceObjectReference,
    alert_namespace: &str,
    event: &NotificationEvent,
) -> SourceMatch {
    let object = &event.involved_object;
    let namespace = source.namespace.as_deref().unwrap_or(alert_namespace);
    if object.kind.as_deref() != Some(source.kind.as_str())
        || object.namespace.as_deref() != Some(namespace)
    {
        return SourceMatch::No;
    }
    if source.name == "*" {
        if source.match_labels.is_empty() {
            return SourceMatch::Yes;
        }
        return SourceMatch::IfLabels(source.match_labels.clone());
    }
    if object.name.as_deref() == Some(source.name.as_str()) {
        SourceMatch::Yes
    } else {
        SourceMatch::No
    }
}

/// Whether the Alert's severity admits the event (`info` admits all, `error` only errors).
pub fn severity_admits(alert: &Alert, event: &NotificationEvent) -> bool {
    alert.severity_filter() == EventSeverityFilter::Info || event.severity == EventSeverity::Error
}

/// An Alert's regex could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("invalid {list} regular expression {pattern:?}: {source}")]
pub struct InvalidPattern {
    pub list: &'static str,
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// Compiles regexes once and finds involved objects' labels.
pub struct Matcher {
    client: Client,
    regexes: Mutex<HashMap<String, Regex>>,
    kinds: Mutex<HashMap<String, ApiResource>>,
}

impl Matcher {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            regexes: Mutex::new(HashMap::new()),
            kinds: Mutex::new(HashMap::new()),
        }
    }

    fn regex(&self, list: &'static str, pattern: &str) -> Result<Regex, InvalidPattern> {
        let mut cache = self.regexes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(regex) = cache.get(pattern) {
            return Ok(regex.clone());
        }
        let regex = Regex::new(pattern).map_err(|source| InvalidPattern {
            list,
            pattern: pattern.to_owned(),
            source,
        })?;
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), regex.clone());
        Ok(regex)
    }

    /// Whether the message passes the Alert's inclusion and exclusion lists.
    pub fn message_admitted(&self, alert: &Alert, message: &str) -> Result<bool, InvalidPattern> {
        let spec = &alert.spec;
        if !spec.inclusion_list.is_empty() {
            let mut included = false;
            for pattern in &spec.inclusion_list {
                included |= self.regex("inclusionList", pattern)?.is_match(message);
            }
            if !included {
                return Ok(false);
            }
        }
        for pattern in &spec.exclusion_list {
            if self.regex("exclusionList", pattern)?.is_match(message) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the Alert selects the event's object (looking up labels where it must).
    pub async fn sources_select(&self, alert: &Alert, event: &NotificationEvent) -> bool {
        let namespace = alert.metadata.namespace.as_deref().unwrap_or_default();
        let mut wanted = Vec::new();
        for source in &alert.spec.event_sources {
            match source_matches(source, namespace, event) {
                SourceMatch::Yes => return true,
                SourceMatch::IfLabels(labels) => wanted.push(labels),
                SourceMatch::No => {}
            }
        }
        if wanted.is_empty() {
            return false;
        }
        let Some(labels) = self.object_labels(event).await else {
            return false;
        };
        wanted.iter().any(|required| {
            required
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
        })
    }

    async fn object_labels(&self, event: &NotificationEvent) -> Option<BTreeMap<String, String>> {
        let object = &event.involved_object;
        let (api_version, kind) = (object.api_version.as_deref()?, object.kind.as_deref()?);
        let resource = self.resource(api_version, kind).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), object.namespace.as_deref()?, &resource);
        match api.get_metadata_opt(object.name.as_deref()?).await {
            Ok(found) => found.map(|meta| meta.metadata.labels.unwrap_or_default()),
            Err(error) => {
                tracing::warn!(kind, name = object.name.as_deref(), %error, "reading the labels of an event's object failed");
                None
            }
        }
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Option<ApiResource> {
        let key = format!("{api_version}/{kind}");
        if let Some(found) = self
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Some(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .inspect_err(|error| tracing::warn!(%key, %error, "discovering an event's kind failed"))
            .ok()?;
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        if kinds.len() >= CACHE_LIMIT {
            kinds.clear();
        }
        kinds.insert(key, resource.clone());
        Some(resource)
    }
}

/// The Alerts (not suspended) whose severity and sources admit the event; Alerts with a
/// regex that does not compile are returned in the second list.
pub async fn matching_alerts(
    matcher: &Matcher,
    alerts: Vec<Arc<Alert>>,
    event: &NotificationEvent,
) -> (Vec<Arc<Alert>>, Vec<(Arc<Alert>, InvalidPattern)>) {
    let mut matched = Vec::new();
    let mut invalid = Vec::new();
    for alert in alerts {
        if alert.spec.suspend || !severity_admits(&alert, event) {
            continue;
        }
        if !matcher.sources_select(&alert, event).await {
            continue;
        }
        match matcher.message_admitted(&alert, &event.message) {
            Ok(true) => matched.push(alert),
            Ok(false) => {}
            Err(error) => invalid.push((alert, error)),
        }
    }
    (matched, invalid)
}
