//! Event metadata as Flux's event server treats it: which keys are kept on receipt, the
//! de-duplication key, and the metadata an Alert's Provider receives.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sluice_api::notification::Alert;
use sluice_runtime::events::{EVENT_ANNOTATION_PREFIX, NotificationEvent};

/// The API group of the involved object (`""` for the core group).
pub fn object_group(event: &NotificationEvent) -> &str {
    let api_version = event.involved_object.api_version.as_deref().unwrap_or("");
    api_version
        .rsplit_once('/')
        .map_or("", |(group, _version)| group)
}

fn group_key(event: &NotificationEvent, suffix: &str) -> String {
    format!("{}/{suffix}", object_group(event))
}

/// Keeps `event.toolkit.fluxcd.io/*` and `<group>/*` keys, without `<group>/checksum` and
/// `<group>/digest`.
pub fn clean_up(event: &mut NotificationEvent) {
    let prefix = group_key(event, "");
    let dropped = [group_key(event, "checksum"), group_key(event, "digest")];
    event.metadata.retain(|key, _| {
        (key.starts_with(EVENT_ANNOTATION_PREFIX) || key.starts_with(&prefix))
            && !dropped.contains(key)
    });
}

/// The de-duplication key: object, message, revisions and token (Flux's `eventKeyFunc`).
pub fn dedupe_key(event: &NotificationEvent) -> [u8; 32] {
    let object = &event.involved_object;
    let mut key = format!(
        "event/name={}/namespace={}/kind={}/message={}",
        object.name.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default(),
        object.kind.as_deref().unwrap_or_default(),
        event.message
    );
    for suffix in ["originRevision", "revision", "token"] {
        if let Some(value) = event.metadata.get(&group_key(event, suffix)) {
            key.push_str(&format!("/{suffix}={value}"));
        }
    }
    Sha256::digest(key.as_bytes()).into()
}

/// Drops `<group>/token`, which only distinguishes events for de-duplication.
pub fn strip_token(event: &mut NotificationEvent) {
    let key = group_key(event, "token");
    event.metadata.remove(&key);
}

/// Metadata for the Provider, prefixes stripped; later sources win: `event.toolkit.fluxcd.io/*`,
/// the Alert's `eventMetadata`, its `summary`, then the object group's keys.
pub fn combine(event: &NotificationEvent, alert: &Alert) -> BTreeMap<String, String> {
    let group_prefix = group_key(event, "");
    let mut combined = BTreeMap::new();
    for (key, value) in &event.metadata {
        if let Some(stripped) = key.strip_prefix(EVENT_ANNOTATION_PREFIX) {
            combined.insert(stripped.to_owned(), value.clone());
        }
    }
    for (key, value) in &alert.spec.event_metadata {
        combined.insert(key.clone(), value.clone());
    }
    if !alert.spec.summary.is_empty() {
        combined.insert("summary".to_owned(), alert.spec.summary.clone());
    }
    for (key, value) in &event.metadata {
        if let Some(stripped) = key.strip_prefix(&group_prefix) {
            combined.insert(stripped.to_owned(), value.clone());
        }
    }
    combined
}
