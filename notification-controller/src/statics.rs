//! Alerts and Providers are static in Flux's v1beta3 API (no status): the controller caches them
//! for the event server, removes the finalizer older Flux versions added, and reports Providers
//! it cannot deliver to with a Warning event naming the problem, once per generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_api::meta::FINALIZER;
use sluice_api::notification::{Alert, Provider};
use sluice_runtime::RuntimeContext;
use sluice_runtime::events::ObjectEvent;

use crate::providers::is_supported;

/// Reason of the Warning event on a Provider Sluice cannot deliver to.
pub const PROVIDER_STALLED: &str = "Stalled";
/// Generations remembered for the once-per-generation warning.
const WARNED_LIMIT: usize = 10_000;

/// The cached Alerts and Providers.
#[derive(Clone)]
pub struct Caches {
    pub alerts: Store<Alert>,
    pub providers: Store<Provider>,
}

/// Why a Provider cannot deliver, or `None` when Sluice supports it.
pub fn unsupported(provider: &Provider) -> Option<String> {
    let type_ = &provider.spec.type_;
    if !provider.provider_type().is_some_and(is_supported) {
        return Some(format!(
            "provider type {type_:?} is not supported by Sluice's notification-controller; events for Alerts using this Provider are not delivered"
        ));
    }
    if !provider.spec.commit_status_expr.is_empty() {
        return Some(
            "spec.commitStatusExpr is not supported by Sluice's notification-controller yet; events for Alerts using this Provider are not delivered".to_owned(),
        );
    }
    None
}

impl Caches {
    /// Waits until both caches hold their first listing; false when the watches ended first.
    pub async fn ready(&self) -> bool {
        self.alerts.wait_until_ready().await.is_ok()
            && self.providers.wait_until_ready().await.is_ok()
    }
}

/// Starts the watches (cache updates on every replica, writes only on the leader); the tasks
/// run until the runtime shuts down.
pub fn start(runtime: &RuntimeContext) -> (Caches, Vec<tokio::task::JoinHandle<()>>) {
    let config = match runtime.flags.label_selector() {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let (alerts, alert_writer) = reflector::store();
    let (providers, provider_writer) = reflector::store();
    let alert_api: Api<Alert> = runtime.watched_api();
    let provider_api: Api<Provider> = runtime.watched_api();
    let alert_stream = reflector::reflector(alert_writer, watcher(alert_api, config.clone()))
        .default_backoff()
        .applied_objects();
    let provider_stream = reflector::reflector(provider_writer, watcher(provider_api, config))
        .default_backoff()
        .applied_objects();
    let warned = Arc::new(Mutex::new(HashMap::new()));
    let tasks = vec![
        tokio::spawn(watch(
            runtime.clone(),
            alert_stream,
            |_| None,
            warned.clone(),
        )),
        tokio::spawn(watch(runtime.clone(), provider_stream, unsupported, warned)),
    ];
    (Caches { alerts, providers }, tasks)
}

type Warned = Arc<Mutex<HashMap<String, i64>>>;

async fn watch<K, S>(
    runtime: RuntimeContext,
    stream: S,
    problem: fn(&K) -> Option<String>,
    warned: Warned,
) where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned,
    K: Serialize + std::fmt::Debug + Send + Sync + 'static,
    S: Stream<Item = Result<K, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        let next = tokio::select! {
            () = runtime.shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        match next {
            None => return,
            Some(Err(error)) => {
                tracing::warn!(%error, kind = %K::kind(&()), "watch failed; retrying")
            }
            Some(Ok(object)) if runtime.leadership.is_leader() => {
                remove_legacy_finalizer(&runtime, &object).await;
                if let Some(message) = problem(&object) {
                    warn_once(&runtime, &object, message, &warned).await;
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn warn_once<K>(runtime: &RuntimeContext, object: &K, message: String, warned: &Warned)
where
    K: Resource<DynamicType = ()>,
{
    let uid = object.meta().uid.clone().unwrap_or_default();
    let generation = object.meta().generation.unwrap_or_default();
    {
        let mut seen = warned.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.get(&uid) == Some(&generation) {
            return;
        }
        if seen.len() >= WARNED_LIMIT {
            seen.clear();
        }
        seen.insert(uid, generation);
    }
    tracing::error!(kind = %K::kind(&()), name = %object.name_any(), namespace = ?object.namespace(), %message, "provider stalled");
    runtime
        .events
        .publish(object, ObjectEvent::error(PROVIDER_STALLED, message))
        .await;
}

async fn remove_legacy_finalizer<K>(runtime: &RuntimeContext, object: &K)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned,
    K: std::fmt::Debug,
{
    if !object.finalizers().iter().any(|f| f == FINALIZER) {
        return;
    }
    let finalizers: Vec<&String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": object.resource_version(),
    }});
    let api: Api<K> = Api::namespaced(
        runtime.client.clone(),
        object.namespace().as_deref().unwrap_or_default(),
    );
    if let Err(error) = api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(kind = %K::kind(&()), name = %object.name_any(), %error, "removing the legacy finalizer failed");
    }
}
