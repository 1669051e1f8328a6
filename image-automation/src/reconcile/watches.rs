//! What else triggers an automation: a changed `latestRef` of an ImagePolicy in its namespace
//! (Flux's `automationsForImagePolicy`; markers are the only link, so all of them run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use sluice_api::image::{ImagePolicy, ImageUpdateAutomation};

/// Maps an ImagePolicy event to the automations of its namespace when its `latestRef` differs
/// from the last one seen (one entry per live policy; deleted policies are forgotten).
#[derive(Clone)]
pub struct LatestRefTrigger {
    automations: Store<ImageUpdateAutomation>,
    seen: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl LatestRefTrigger {
    pub fn new(automations: Store<ImageUpdateAutomation>) -> Self {
        Self {
            automations,
            seen: Arc::default(),
        }
    }

    /// The automations to run after this event of `policy`.
    pub fn automations_to_run(
        &self,
        policy: &ImagePolicy,
    ) -> Vec<ObjectRef<ImageUpdateAutomation>> {
        let namespace = policy.namespace().unwrap_or_default();
        let key = (namespace.clone(), policy.name_any());
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if policy.metadata.deletion_timestamp.is_some() {
            seen.remove(&key);
            return Vec::new();
        }
        let Some(latest) = policy
            .status
            .as_ref()
            .and_then(|status| status.latest_ref.as_ref())
            .map(ToString::to_string)
        else {
            return Vec::new();
        };
        let previous = seen.insert(key, latest.clone());
        drop(seen);
        // A first sighting also triggers: at start-up the automations run anyway (deduplicated).
        if previous.as_deref() == Some(latest.as_str()) {
            return Vec::new();
        }
        self.automations
            .state()
            .into_iter()
            .filter(|automation| automation.namespace().as_deref() == Some(namespace.as_str()))
            .map(|automation| ObjectRef::from_obj(automation.as_ref()))
            .collect()
    }
}
