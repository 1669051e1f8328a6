//! Kubernetes Events as Flux's controllers write them: core/v1 Events that carry the event metadata
//! as annotations, `source.component`, first and last timestamps, and a count that grows when the
//! same event repeats instead of a new Event each time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// How many distinct recent events are remembered for aggregation.
const REMEMBERED: usize = 4096;

/// What makes two events the same: the object, the type, the reason and the message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EventKey {
    namespace: String,
    object: String,
    type_: String,
    reason: String,
    message: String,
}

#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    count: i32,
}

/// Writes core/v1 Events for one controller and aggregates repeats (bounded memory).
pub struct CoreEventRecorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    events: HashMap<EventKey, Recorded>,
    order: VecDeque<EventKey>,
}

impl Recent {
    fn remember(&mut self, key: EventKey, recorded: Recorded) {
        if self.events.insert(key.clone(), recorded).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.events.remove(&oldest);
            }
        }
    }
}

impl CoreEventRecorder {
    /// A recorder reporting as `controller` (`source.component`) from `instance`.
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Records an event of `type_` ("Normal" or "Warning") about `object`; a repeat of the last
    /// equal event raises its count and `lastTimestamp` instead of creating another.
    pub async fn record(
        &self,
        object: &ObjectReference,
        type_: &str,
        reason: &str,
        message: &str,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), kube::Error> {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let key = EventKey {
            namespace,
            object: object.uid.clone().unwrap_or_default(),
            type_: type_.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        let now = Time(Timestamp::now());
        let previous = self.lock().events.get(&key).cloned();
        if let Some(previous) = previous {
            let count = previous.count + 1;
            let patch = json!({"count": count, "lastTimestamp": now});
            match api
                .patch(
                    &previous.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    let recorded = Recorded { count, ..previous };
                    self.lock().remember(key, recorded);
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        let event = self.new_event(object, type_, reason, message, annotations, now);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.lock().remember(key, Recorded { name, count: 1 });
        Ok(())
    }

    fn new_event(
        &self,
        object: &ObjectReference,
        type_: &str,
        reason: &str,
        message: &str,
        annotations: BTreeMap<String, String>,
        now: Time,
    ) -> Event {
        let nanos = now.0.as_nanosecond();
        Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{nanos:x}",
                    object.name.as_deref().unwrap_or("object")
                )),
                namespace: object.namespace.clone(),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            },
            involved_object: object.clone(),
            type_: Some(type_.to_owned()),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(message: &str) -> EventKey {
        EventKey {
            namespace: "ns".into(),
            object: "uid".into(),
            type_: "Normal".into(),
            reason: "Progressing".into(),
            message: message.into(),
        }
    }

    #[test]
    fn remembers_a_bounded_number_of_events_dropping_the_oldest() {
        let mut recent = Recent::default();
        for i in 0..=REMEMBERED {
            let recorded = Recorded {
                name: format!("e{i}"),
                count: 1,
            };
            recent.remember(key(&i.to_string()), recorded);
        }
        assert_eq!(recent.events.len(), REMEMBERED);
        assert!(!recent.events.contains_key(&key("0")));
        assert!(recent.events.contains_key(&key(&REMEMBERED.to_string())));
    }
}
