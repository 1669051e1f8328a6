//! Watching applied objects: a change to fields we own triggers its Kustomization within
//! seconds, and a Kustomization waiting for health is triggered when its objects settle.

mod owned;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use sluice_api::kustomize::{Kustomization, ObjectId, labels};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::apply::{Change, FIELD_MANAGER};
use crate::health::{self, Health};
pub use owned::owned_fingerprint;

/// Identity of a watched object.
type ObjectKey = (String, String, String, String);

/// Annotation selecting how drift is handled; see [`DriftMode`].
pub const DRIFT_MODE_ANNOTATION: &str = "sluice.dev/drift-mode";

/// How a Kustomization treats out-of-band changes to its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftMode {
    /// Put the desired state back (Flux's behaviour).
    Correct,
    /// Report drift in the `Drifted` condition and an event; leave the object alone.
    DetectOnly,
}

impl DriftMode {
    /// The mode chosen by the annotation; `Correct` unless it says `DetectOnly` (any case).
    pub fn of(kustomization: &Kustomization) -> Self {
        let detect = kustomization
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(DRIFT_MODE_ANNOTATION))
            .is_some_and(|value| value.eq_ignore_ascii_case("detectonly"));
        if detect {
            Self::DetectOnly
        } else {
            Self::Correct
        }
    }
}

/// What the watcher last saw of one applied object.
struct Observed {
    /// [`owned_fingerprint`] of the fields our field manager owns.
    fingerprint: u64,
    generation: Option<i64>,
    health: Health,
}

#[derive(Default)]
struct State {
    objects: HashMap<ObjectKey, Observed>,
    /// The resourceVersion and owned-fields fingerprint of our last write of each object.
    own_writes: HashMap<ObjectKey, (String, u64)>,
    watched: HashSet<String>,
    /// Kustomizations (`namespace`, `name`) waiting for their objects' health.
    awaiting_health: HashSet<(String, String)>,
    /// Kustomizations whose objects drifted since their last reconcile took note.
    drifted: HashSet<(String, String)>,
}

/// Why an object change triggers its Kustomization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// A field we own changed, or the object was deleted.
    Drift,
    /// The object became Current or Failed while its Kustomization waits for health.
    Health,
}

/// Watches every kind the controller applied and sends owner Kustomizations to reconcile.
#[derive(Clone)]
pub struct DriftWatcher {
    client: Client,
    namespace: Option<String>,
    triggers: broadcast::Sender<ObjectRef<Kustomization>>,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

fn key_of(group: &str, kind: &str, namespace: &str, name: &str) -> ObjectKey {
    (
        group.to_owned(),
        kind.to_owned(),
        namespace.to_owned(),
        name.to_owned(),
    )
}

impl DriftWatcher {
    /// A watcher on `client`; with `namespace`, only Kustomizations there are triggered.
    pub fn new(client: Client, namespace: Option<String>, stop: CancellationToken) -> Self {
        let (triggers, _) = broadcast::channel(1024);
        Self {
            client,
            namespace,
            triggers,
            state: Arc::default(),
            stop,
        }
    }

    /// Kustomizations whose objects changed, for `Controller::reconcile_on`.
    pub fn triggers(&self) -> impl Stream<Item = ObjectRef<Kustomization>> + Send + 'static {
        let receiver = self.triggers.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(object) => return Some((object, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Records writes of this apply (so they do not count as drift) and watches their kinds.
    pub fn track(&self, changes: &[Change], resources: &[ApiResource]) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for change in changes {
                if let Some(written) = &change.written {
                    let key = key_of(
                        &change.id.group,
                        &change.id.kind,
                        &change.id.namespace,
                        &change.id.name,
                    );
                    let own = (written.resource_version.clone(), written.owned_fingerprint);
                    state.own_writes.insert(key, own);
                }
            }
        }
        for resource in resources {
            self.watch_kind(resource);
        }
    }

    fn watch_kind(&self, resource: &ApiResource) {
        let id = format!(
            "{}/{}/{}",
            resource.group, resource.version, resource.plural
        );
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !state.watched.insert(id.clone()) {
                return;
            }
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource);
        let config = watcher::Config::default().labels(labels::NAME);
        let this = self.clone();
        let resource = resource.clone();
        tokio::spawn(async move {
            let events = watcher(api, config).default_backoff();
            futures::pin_mut!(events);
            loop {
                let next = tokio::select! {
                    () = this.stop.cancelled() => break,
                    next = events.next() => next,
                };
                match next {
                    Some(Ok(event)) => this.observe(&resource, event),
                    Some(Err(error)) => {
                        tracing::debug!(kind = %resource.kind, %error, "drift watch error; retrying");
                    }
                    None => break,
                }
            }
            tracing::debug!(watch = %id, "drift watch stopped");
        });
    }

    fn observe(&self, resource: &ApiResource, event: watcher::Event<DynamicObject>) {
        let (object, deleted, initial) = match event {
            watcher::Event::Apply(object) => (object, false, false),
            watcher::Event::InitApply(object) => (object, false, true),
            watcher::Event::Delete(object) => (object, true, false),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let labels = object.metadata.labels.clone().unwrap_or_default();
        let (Some(owner), Some(owner_namespace)) =
            (labels.get(labels::NAME), labels.get(labels::NAMESPACE))
        else {
            return;
        };
        if self
            .namespace
            .as_ref()
            .is_some_and(|watched| watched != owner_namespace)
        {
            return;
        }
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone().unwrap_or_default();
        let key = key_of(&resource.group, &resource.kind, &namespace, &name);
        let owner_key = (owner_namespace.clone(), owner.clone());
        let observed = (!deleted).then(|| Observed::of(resource, &object));
        let trigger = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let trigger = match observed {
                None => {
                    state.objects.remove(&key);
                    state.own_writes.remove(&key);
                    Some(Trigger::Drift)
                }
                Some(observed) => {
                    let version = object.metadata.resource_version.as_ref();
                    state.update(key, observed, version, initial, &owner_key)
                }
            };
            if trigger == Some(Trigger::Drift) {
                state.drifted.insert(owner_key);
            }
            trigger
        };
        let Some(trigger) = trigger else {
            return;
        };
        tracing::info!(
            kind = %resource.kind, namespace = %namespace, name = %name,
            kustomization = %format!("{owner_namespace}/{owner}"), deleted, ?trigger,
            "applied object changed"
        );
        let _ = self
            .triggers
            .send(ObjectRef::new(owner).within(owner_namespace));
    }

    /// The health of an applied object as last watched, if its watch has seen it at
    /// `min_generation` or later; `None` means read it from the API.
    pub fn cached_health(&self, id: &ObjectId, min_generation: Option<i64>) -> Option<Health> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let observed = state
            .objects
            .get(&key_of(&id.group, &id.kind, &id.namespace, &id.name))?;
        let fresh = match (min_generation, observed.generation) {
            (Some(wanted), Some(seen)) => seen >= wanted,
            (Some(_), None) => false,
            (None, _) => true,
        };
        fresh.then(|| observed.health.clone())
    }

    /// Marks a Kustomization as waiting for health: its objects becoming Current or Failed
    /// trigger it at once.
    pub fn await_health(&self, namespace: &str, name: &str, waiting: bool) {
        let key = (namespace.to_owned(), name.to_owned());
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting {
            state.awaiting_health.insert(key);
        } else {
            state.awaiting_health.remove(&key);
        }
    }

    /// Whether an object of this Kustomization drifted since the last call; clears the mark.
    pub fn take_drift(&self, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_owned(), name.to_owned());
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.drifted.remove(&key)
    }

    /// Stops every watch.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Observed {
    /// Fingerprint, generation and health of a watched object of kind `resource`.
    fn of(resource: &ApiResource, object: &DynamicObject) -> Self {
        let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
        // Objects from the initial list carry no apiVersion and kind; health rules need them.
        value["apiVersion"] = Value::from(resource.api_version.clone());
        value["kind"] = Value::from(resource.kind.clone());
        Self {
            fingerprint: owned_fingerprint(&value, FIELD_MANAGER),
            generation: object.metadata.generation,
            health: health::assess(&value),
        }
    }
}

impl State {
    /// Records a watched object at `version`; says whether its owner must reconcile.
    fn update(
        &mut self,
        key: ObjectKey,
        observed: Observed,
        version: Option<&String>,
        initial: bool,
        owner: &(String, String),
    ) -> Option<Trigger> {
        let fingerprint = observed.fingerprint;
        let own_write = self.own_writes.get(&key);
        // Our own write, whether or not `track` has recorded its version yet.
        let own = own_write.is_some_and(|(own_version, own_fingerprint)| {
            Some(own_version) == version || *own_fingerprint == fingerprint
        });
        // A watch that starts (or relists) after an out-of-band change first sees the changed
        // object: compare it with what we wrote, not with nothing.
        let baseline = match self.objects.get(&key) {
            Some(previous) if !initial => Some(previous.fingerprint),
            _ => own_write.map(|(_, own_fingerprint)| *own_fingerprint),
        };
        let settled = matches!(observed.health, Health::Current | Health::Failed(_));
        let health_changed = self
            .objects
            .get(&key)
            .is_none_or(|previous| previous.health != observed.health);
        self.objects.insert(key, observed);
        if !own && baseline.is_some_and(|baseline| baseline != fingerprint) {
            return Some(Trigger::Drift);
        }
        (settled && health_changed && self.awaiting_health.contains(owner))
            .then_some(Trigger::Health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;
    use serde_json::json;

    fn listed_deployment(status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "apps", "generation": 1, "resourceVersion": "7"},
            "spec": {"replicas": 1},
            "status": status,
        }))
        .expect("valid object")
    }

    #[tokio::test]
    async fn health_of_a_listed_object_follows_its_kind_and_triggers_only_when_settled() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
        let key = key_of("apps", "Deployment", "apps", "web");
        let owner = ("apps".to_owned(), "app".to_owned());
        let id = ObjectId {
            namespace: "apps".into(),
            name: "web".into(),
            group: "apps".into(),
            kind: "Deployment".into(),
        };
        let mut state = State::default();
        state.awaiting_health.insert(owner.clone());
        let unobserved = listed_deployment(json!({}));
        let version = Some("7".to_owned());
        let observe = |object: &DynamicObject| Observed::of(&resource, object);
        assert_eq!(
            state.update(
                key.clone(),
                observe(&unobserved),
                version.as_ref(),
                true,
                &owner
            ),
            None
        );
        let watcher = DriftWatcher {
            client: kube::Client::try_from(kube::Config::new(
                "http://127.0.0.1:1".parse().expect("uri"),
            ))
            .expect("client"),
            namespace: None,
            triggers: broadcast::channel(1).0,
            state: Arc::new(Mutex::new(state)),
            stop: CancellationToken::new(),
        };
        assert!(
            matches!(
                watcher.cached_health(&id, None),
                Some(Health::InProgress(_))
            ),
            "a Deployment without observedGeneration is not Current, even without a kind in the list"
        );
        assert_eq!(
            watcher.cached_health(&id, Some(2)),
            None,
            "an older generation is not read"
        );
        let available = listed_deployment(json!({
            "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
            "availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}],
        }));
        let mut state = watcher.state.lock().expect("lock");
        assert_eq!(
            state.update(
                key.clone(),
                observe(&available),
                version.as_ref(),
                false,
                &owner
            ),
            Some(Trigger::Health)
        );
        assert_eq!(
            state.update(key, observe(&available), version.as_ref(), false, &owner),
            None,
            "no trigger while the health stays the same"
        );
    }

    fn owned_config_map(value: &str, version: &str, manager: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": "cm", "namespace": "apps", "resourceVersion": version,
                "managedFields": [{"manager": manager, "operation": "Apply",
                    "fieldsV1": {"f:data": {"f:value": {}}}}]},
            "data": {"value": value},
        }))
        .expect("valid object")
    }

    #[test]
    fn our_write_is_not_drift_even_before_it_is_tracked() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
        let key = key_of("", "ConfigMap", "apps", "cm");
        let owner = ("apps".to_owned(), "app".to_owned());
        let observe = |object: &DynamicObject| Observed::of(&resource, object);
        let ours = observe(&owned_config_map("desired", "1", FIELD_MANAGER));
        let mut state = State::default();
        state
            .own_writes
            .insert(key.clone(), ("1".to_owned(), ours.fingerprint));
        let first = Some("1".to_owned());
        assert_eq!(
            state.update(key.clone(), ours, first.as_ref(), false, &owner),
            None
        );
        let intruded = observe(&owned_config_map("changed", "2", FIELD_MANAGER));
        let second = Some("2".to_owned());
        assert_eq!(
            state.update(key.clone(), intruded, second.as_ref(), false, &owner),
            Some(Trigger::Drift),
            "a change to a field we own is drift"
        );
        let put_back = observe(&owned_config_map("desired", "3", FIELD_MANAGER));
        let third = Some("3".to_owned());
        assert_eq!(
            state.update(key, put_back, third.as_ref(), false, &owner),
            None,
            "our correction, seen before its version is recorded, matches what we wrote"
        );
    }

    #[test]
    fn a_change_made_before_the_watch_lists_the_object_is_drift() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
        let key = key_of("", "ConfigMap", "apps", "cm");
        let owner = ("apps".to_owned(), "app".to_owned());
        let observe = |object: &DynamicObject| Observed::of(&resource, object);
        let ours = observe(&owned_config_map("desired", "1", FIELD_MANAGER));
        let mut state = State::default();
        state
            .own_writes
            .insert(key.clone(), ("1".to_owned(), ours.fingerprint));
        let intruded = observe(&owned_config_map("changed", "2", "intruder"));
        let listed = Some("2".to_owned());
        assert_eq!(
            state.update(key.clone(), intruded, listed.as_ref(), true, &owner),
            Some(Trigger::Drift),
            "the initial list shows a change to what we wrote"
        );
        let unchanged = observe(&owned_config_map("desired", "1", FIELD_MANAGER));
        let mut fresh = State::default();
        fresh
            .own_writes
            .insert(key.clone(), ("1".to_owned(), unchanged.fingerprint));
        let ours_listed = Some("1".to_owned());
        assert_eq!(
            fresh.update(key, unchanged, ours_listed.as_ref(), true, &owner),
            None,
            "listing our own write is not drift"
        );
    }
}
