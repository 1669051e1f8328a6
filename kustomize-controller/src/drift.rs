//! Watching applied objects so an out-of-band change triggers its Kustomization within seconds.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use sluice_api::kustomize::{Kustomization, labels};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::apply::Change;

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

struct State {
    fingerprints: HashMap<ObjectKey, u64>,
    own_writes: HashMap<ObjectKey, String>,
    watched: HashSet<String>,
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

/// Hash of everything a user can change: labels, annotations and all but metadata and status.
fn fingerprint(object: &DynamicObject) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut data = object.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.remove("status");
    }
    data.to_string().hash(&mut hasher);
    format!(
        "{:?}{:?}",
        object.metadata.labels, object.metadata.annotations
    )
    .hash(&mut hasher);
    hasher.finish()
}

impl DriftWatcher {
    /// A watcher on `client`; with `namespace`, only Kustomizations there are triggered.
    pub fn new(client: Client, namespace: Option<String>, stop: CancellationToken) -> Self {
        let (triggers, _) = broadcast::channel(1024);
        Self {
            client,
            namespace,
            triggers,
            state: Arc::new(Mutex::new(State {
                fingerprints: HashMap::new(),
                own_writes: HashMap::new(),
                watched: HashSet::new(),
            })),
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
                if let Some(version) = &change.written_version {
                    let key = key_of(
                        &change.id.group,
                        &change.id.kind,
                        &change.id.namespace,
                        &change.id.name,
                    );
                    state.own_writes.insert(key, version.clone());
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
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone().unwrap_or_default();
        let key = key_of(&resource.group, &resource.kind, &namespace, &name);
        let changed = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if deleted {
                state.fingerprints.remove(&key);
                state.own_writes.remove(&key);
                true
            } else {
                let print = fingerprint(&object);
                let previous = state.fingerprints.insert(key.clone(), print);
                let own = state.own_writes.get(&key) == object.metadata.resource_version.as_ref();
                !initial && !own && previous.is_some_and(|previous| previous != print)
            }
        };
        if !changed {
            return;
        }
        let labels = object.metadata.labels.unwrap_or_default();
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
        tracing::info!(
            kind = %resource.kind, namespace = %namespace, name = %name,
            kustomization = %format!("{owner_namespace}/{owner}"), deleted,
            "applied object changed out of band"
        );
        let _ = self
            .triggers
            .send(ObjectRef::new(owner).within(owner_namespace));
    }

    /// Stops every watch.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}
