//! What else triggers an ImagePolicy: a new scan revision of its ImageRepository (Flux's
//! `imageRepositoryPredicate`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use sluice_api::image::{ImagePolicy, ImageRepository};

use super::imagerepository::key_of;
use crate::storage::RepositoryKey;

/// Maps an ImageRepository event to the policies referring to it, only when its
/// `lastScanResult.revision` differs from the last one seen (one entry per repository seen).
#[derive(Clone)]
pub struct RevisionTrigger {
    policies: Store<ImagePolicy>,
    seen: Arc<Mutex<HashMap<RepositoryKey, String>>>,
}

impl RevisionTrigger {
    pub fn new(policies: Store<ImagePolicy>) -> Self {
        Self {
            policies,
            seen: Arc::default(),
        }
    }

    /// The policies to re-evaluate after this event of `repository`.
    pub fn policies_to_evaluate(
        &self,
        repository: &ImageRepository,
    ) -> Vec<ObjectRef<ImagePolicy>> {
        let key = key_of(repository);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if repository.metadata.deletion_timestamp.is_some() {
            seen.remove(&key);
            return Vec::new();
        }
        let Some(revision) = repository
            .status
            .as_ref()
            .and_then(|status| status.last_scan_result.as_ref())
            .map(|result| result.revision.clone())
        else {
            return Vec::new();
        };
        if seen.get(&key) == Some(&revision) {
            return Vec::new();
        }
        seen.insert(key.clone(), revision);
        drop(seen);
        referring(&self.policies, &key)
    }
}

/// Policies in `store` whose `imageRepositoryRef` names `key`.
fn referring(store: &Store<ImagePolicy>, key: &RepositoryKey) -> Vec<ObjectRef<ImagePolicy>> {
    store
        .state()
        .into_iter()
        .filter(|policy| {
            let reference = &policy.spec.image_repository_ref;
            let own = policy.namespace().unwrap_or_default();
            reference.name == key.name
                && reference.namespace.as_deref().unwrap_or(&own) == key.namespace
        })
        .map(|policy| ObjectRef::from_obj(policy.as_ref()))
        .collect()
}
