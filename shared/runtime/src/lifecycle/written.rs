//! The resourceVersion each object had after this process last wrote its status, to tell a
//! cached copy that trails those writes from one that is current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::{Resource, ResourceExt};

/// Last written resourceVersions by `kind/namespace/name`; one entry per object written, removed
/// when the object's finalizer is released.
#[derive(Clone, Debug, Default)]
pub struct WrittenVersions(Arc<Mutex<HashMap<String, String>>>);

impl WrittenVersions {
    fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
        let kind = K::kind(&());
        format!(
            "{kind}/{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    }

    /// Records the object as a status write returned it.
    pub fn record<K: Resource<DynamicType = ()>>(&self, stored: &K) {
        let Some(version) = stored.resource_version() else {
            return;
        };
        let mut versions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        versions.insert(Self::key(stored), version);
    }

    /// Whether `cached` may miss a status this process wrote: it was written, and the cache holds
    /// another version (older, or changed since by someone else).
    pub fn may_trail<K: Resource<DynamicType = ()>>(&self, cached: &K) -> bool {
        let versions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        versions
            .get(&Self::key(cached))
            .is_some_and(|written| cached.resource_version().as_ref() != Some(written))
    }

    /// Forgets a deleted object.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, object: &K) {
        let mut versions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        versions.remove(&Self::key(object));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn at(version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("app".into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn a_copy_other_than_the_last_write_may_trail_it() {
        let written = WrittenVersions::default();
        assert!(
            !written.may_trail(&at("5")),
            "nothing written: the cache is all there is"
        );
        written.record(&at("7"));
        assert!(written.may_trail(&at("5")));
        assert!(!written.may_trail(&at("7")));
        written.forget(&at("7"));
        assert!(!written.may_trail(&at("5")));
    }
}
