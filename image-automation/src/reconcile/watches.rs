//! What else triggers an automation: a changed `latestRef` of an ImagePolicy in its namespace
//! (Flux's `automationsForImagePolicy`; markers are the only link, so all of them run), and a
//! spec change of its GitRepository.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use sluice_api::image::{ImagePolicy, ImageUpdateAutomation};
use sluice_api::source::GitRepository;

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

/// Maps a GitRepository event to the automations using it when its generation (spec) changed
/// since the last one seen (Flux's `sourceConfigChangePredicate`; new commits do not trigger).
#[derive(Clone)]
pub struct SourceTrigger {
    automations: Store<ImageUpdateAutomation>,
    seen: Arc<Mutex<HashMap<(String, String), i64>>>,
}

impl SourceTrigger {
    pub fn new(automations: Store<ImageUpdateAutomation>) -> Self {
        Self {
            automations,
            seen: Arc::default(),
        }
    }

    /// The automations to run after this event of `repository`.
    pub fn automations_to_run(
        &self,
        repository: &GitRepository,
    ) -> Vec<ObjectRef<ImageUpdateAutomation>> {
        let namespace = repository.namespace().unwrap_or_default();
        let key = (namespace.clone(), repository.name_any());
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if repository.metadata.deletion_timestamp.is_some() {
            seen.remove(&key);
            return Vec::new();
        }
        let generation = repository.metadata.generation.unwrap_or_default();
        let previous = seen.insert(key.clone(), generation);
        drop(seen);
        if previous.is_none_or(|previous| previous == generation) {
            return Vec::new();
        }
        self.automations
            .state()
            .into_iter()
            .filter(|automation| {
                automation.spec.source_ref.name == key.1
                    && automation.source_namespace().as_deref() == Some(namespace.as_str())
            })
            .map(|automation| ObjectRef::from_obj(automation.as_ref()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;

    fn store() -> Store<ImageUpdateAutomation> {
        let mut writer = Writer::default();
        let store = writer.as_reader();
        for (namespace, name, source) in [
            ("a", "one", "fleet"),
            ("a", "two", "other"),
            ("b", "three", "fleet"),
        ] {
            let automation: ImageUpdateAutomation = serde_json::from_value(json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageUpdateAutomation",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"sourceRef": {"kind": "GitRepository", "name": source}, "interval": "1h"},
            }))
            .unwrap();
            writer.apply_watcher_event(&Event::Apply(automation));
        }
        store
    }

    fn names(refs: Vec<ObjectRef<ImageUpdateAutomation>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_changed_latest_ref_runs_the_namespace_automations() {
        let trigger = LatestRefTrigger::new(store());
        let policy = |tag: Option<&str>| -> ImagePolicy {
            let status = tag.map(|tag| json!({"latestRef": {"name": "app", "tag": tag}}));
            serde_json::from_value(json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": "app", "namespace": "a"},
                "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1"}}},
                "status": status,
            }))
            .unwrap()
        };
        assert!(trigger.automations_to_run(&policy(None)).is_empty());
        assert_eq!(
            names(trigger.automations_to_run(&policy(Some("1")))),
            ["one", "two"]
        );
        assert!(trigger.automations_to_run(&policy(Some("1"))).is_empty());
        assert_eq!(
            names(trigger.automations_to_run(&policy(Some("2")))),
            ["one", "two"]
        );
    }

    #[test]
    fn a_source_spec_change_runs_its_automations() {
        let trigger = SourceTrigger::new(store());
        let repository = |generation: i64| -> GitRepository {
            serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "fleet", "namespace": "a", "generation": generation},
                "spec": {"url": "https://example.com/fleet.git", "interval": "1m"},
            }))
            .unwrap()
        };
        assert!(trigger.automations_to_run(&repository(1)).is_empty());
        assert!(trigger.automations_to_run(&repository(1)).is_empty());
        assert_eq!(names(trigger.automations_to_run(&repository(2))), ["one"]);
    }
}
