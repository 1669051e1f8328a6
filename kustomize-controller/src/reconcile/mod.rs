//! The controller: shared context, watches and the Kustomization reconciler.

pub mod kustomization;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Config};
use sluice_api::FluxObject;
use sluice_api::SourceObject;
use sluice_api::kustomize::{Kustomization, SourceKind};
use sluice_api::meta::condition_type::READY;
use sluice_api::source::{Bucket, GitRepository, OCIRepository};
use sluice_artifact::fetch::{ArtifactFetcher, FetchOptions};
use sluice_runtime::conditions::is_true;
use sluice_runtime::{ControllerRunner, RuntimeContext};

use crate::apply::Cluster;
use crate::cli::{ARTIFACT_FETCH_HINTS, ControllerFlags};
use crate::drift::DriftWatcher;
use crate::source::source_namespace;
use crate::tenancy::{KubeconfigPolicy, Tenancy};

/// Name of the controller: events, metrics and the runner.
pub const CONTROLLER_NAME: &str = "kustomize-controller";
/// Field manager of status writes, as in Flux.
pub const STATUS_MANAGER: &str = "gotk-kustomize-controller";

/// Setting up the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("building the artifact HTTP client failed: {0}")]
    Http(String),
}

/// A health check that has not passed yet, keyed by Kustomization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHealth {
    /// What was applied: generation and build digest.
    pub generation: Option<i64>,
    pub digest: String,
    /// When the wait began.
    pub started: std::time::Instant,
}

/// Everything a reconcile needs.
pub struct Context {
    pub runtime: RuntimeContext,
    pub flags: ControllerFlags,
    pub fetcher: ArtifactFetcher,
    pub tenancy: Tenancy,
    pub local: Cluster,
    pub drift: DriftWatcher,
    pub pending_health: Mutex<HashMap<String, PendingHealth>>,
}

impl Context {
    /// A context on the runtime's client; `base_config` is used to build impersonating clients.
    pub fn new(
        runtime: RuntimeContext,
        flags: ControllerFlags,
        base_config: Config,
    ) -> Result<Self, SetupError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|error| SetupError::Http(error.to_string()))?;
        let fetcher = ArtifactFetcher::new(
            http,
            FetchOptions {
                cache_dir: flags.artifact_cache_dir.clone(),
                max_size: flags.artifact_max_size,
                retries: flags.http_retry,
                max_cached: flags.artifact_cache_size,
                hints: &ARTIFACT_FETCH_HINTS,
            },
        );
        let local = Cluster::new(runtime.client.clone());
        let tenancy = Tenancy::new(
            base_config,
            local.clone(),
            flags.default_service_account().map(str::to_owned),
            KubeconfigPolicy {
                allow_exec: flags.insecure_kubeconfig_exec,
                allow_insecure_tls: flags.insecure_kubeconfig_tls,
            },
        );
        let drift = DriftWatcher::new(
            runtime.client.clone(),
            runtime.flags.watch_namespace().map(str::to_owned),
            runtime.shutdown.child(),
        );
        Ok(Self {
            runtime,
            flags,
            fetcher,
            tenancy,
            local,
            drift,
            pending_health: Mutex::default(),
        })
    }
}

/// Kustomizations in `store` reading the source `kind/namespace/name` whose last attempt was
/// not at `revision`.
fn needing_revision(
    store: &kube::runtime::reflector::Store<Kustomization>,
    kind: SourceKind,
    namespace: &str,
    name: &str,
    revision: &str,
) -> Vec<ObjectRef<Kustomization>> {
    let mut matching: Vec<Arc<Kustomization>> = store
        .state()
        .into_iter()
        .filter(|ks| {
            ks.spec.source_ref.kind == kind
                && ks.spec.source_ref.name == name
                && source_namespace(ks) == namespace
                && ks
                    .status
                    .as_ref()
                    .and_then(|status| status.last_attempted_revision.as_deref())
                    != Some(revision)
        })
        .collect();
    matching.sort_by_key(|ks| ks.spec.depends_on.len());
    matching
        .iter()
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

fn source_trigger<S>(
    store: kube::runtime::reflector::Store<Kustomization>,
    kind: SourceKind,
) -> impl Fn(S) -> Vec<ObjectRef<Kustomization>> + Send + Sync + 'static
where
    S: SourceObject,
{
    move |source: S| {
        let Some(artifact) = source.artifact() else {
            return Vec::new();
        };
        let namespace = source.meta().namespace.clone().unwrap_or_default();
        let name = source.meta().name.clone().unwrap_or_default();
        needing_revision(&store, kind, &namespace, &name, &artifact.revision)
    }
}

/// Dependents of `dependency` that are not Ready, to retry them as soon as it becomes Ready.
fn dependents_of(
    store: &kube::runtime::reflector::Store<Kustomization>,
    dependency: &Kustomization,
) -> Vec<ObjectRef<Kustomization>> {
    if !is_true(dependency.conditions(), READY) {
        return Vec::new();
    }
    let namespace = dependency.metadata.namespace.clone().unwrap_or_default();
    let name = dependency.metadata.name.clone().unwrap_or_default();
    store
        .state()
        .into_iter()
        .filter(|ks| !is_true(ks.conditions(), READY))
        .filter(|ks| {
            let own = ks.metadata.namespace.clone().unwrap_or_default();
            ks.spec.depends_on.iter().any(|dep| {
                dep.name == name && dep.namespace.as_deref().unwrap_or(&own) == namespace
            })
        })
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// Runs the Kustomization controller until shutdown.
pub async fn run(context: Arc<Context>) {
    let runtime = context.runtime.clone();
    let kustomizations: Api<Kustomization> = runtime.watched_api();
    let git: Api<GitRepository> = runtime.watched_api();
    let oci: Api<OCIRepository> = runtime.watched_api();
    let buckets: Api<Bucket> = runtime.watched_api();
    let drift = context.drift.clone();
    let watch_drift = context.flags.watch_drift;
    ControllerRunner::new(CONTROLLER_NAME, kustomizations.clone(), &runtime)
        .customize(move |controller| {
            let store = controller.store();
            let dependency_store = store.clone();
            let controller = controller
                .watches(
                    git.clone(),
                    watcher::Config::default(),
                    source_trigger::<GitRepository>(store.clone(), SourceKind::GitRepository),
                )
                .watches(
                    oci.clone(),
                    watcher::Config::default(),
                    source_trigger::<OCIRepository>(store.clone(), SourceKind::OciRepository),
                )
                .watches(
                    buckets.clone(),
                    watcher::Config::default(),
                    source_trigger::<Bucket>(store, SourceKind::Bucket),
                )
                .watches(
                    kustomizations.clone(),
                    watcher::Config::default(),
                    move |dependency: Kustomization| dependents_of(&dependency_store, &dependency),
                );
            if watch_drift {
                controller.reconcile_on(drift.triggers())
            } else {
                controller
            }
        })
        .run(kustomization::reconcile, context.clone())
        .await;
    context.drift.stop();
    context.runtime.events.flush().await;
}
