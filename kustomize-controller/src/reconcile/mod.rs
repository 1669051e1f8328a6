//! The controller: the shared context, the watches, and the Kustomization on the shared lifecycle.
//!
//! [`kustomization`] lists the steps; each lives in its own module and returns its product:
//! [`validate_step`] (timeout) → [`source_step`] (artifact, dependencies, fetched files) →
//! [`build_step`] (objects and digest) → [`apply_step`] (change set) → [`prune_step`] (pruned
//! set) → [`health_step`] (verdict). [`record`] turns the products and the outcome into the
//! Kustomization's own status and success event; [`finalize`] cleans up on deletion.

pub mod apply_step;
pub mod build_step;
pub mod finalize;
pub mod health_step;
pub mod kustomization;
pub mod prune_step;
pub mod record;
pub mod source_step;
pub mod validate_step;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube::{Api, Config};
use sluice_api::kustomize::{Kustomization, SourceKind};
use sluice_api::source::{Bucket, ExternalArtifact, GitRepository, OCIRepository};
use sluice_runtime::lifecycle;
use sluice_runtime::{ControllerRunner, RuntimeContext, backing_off};

use crate::cli::{ARTIFACT_FETCH_HINTS, ControllerFlags};
use crate::cluster::Cluster;
use crate::drift::DriftWatcher;
use crate::source::SourceCache;
use crate::tenancy::{KubeconfigPolicy, Tenancy};
use crate::workload_identity::ObjectLevel;
use health_step::HealthWaits;
use kustomization::KustomizationReconciler;
use sluice_artifact::fetch::{ArtifactFetcher, FetchOptions};
use sluice_runtime::throttle::ThrottleLayer;
use watches::{
    artifact_revision, config_trigger, dependents_of, external_revision, source_trigger,
};

/// Name of the controller: events, metrics and the runner.
pub const CONTROLLER_NAME: &str = "kustomize-controller";
/// Field manager of status writes, as in Flux.
pub const STATUS_MANAGER: &str = "gotk-kustomize-controller";

/// Setting up the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("building the artifact HTTP client failed: {0}")]
    Http(#[source] reqwest::Error),
}

/// Everything a reconcile needs.
pub struct Context {
    pub runtime: RuntimeContext,
    pub flags: ControllerFlags,
    pub fetcher: ArtifactFetcher,
    pub tenancy: Tenancy,
    pub local: Cluster,
    pub drift: DriftWatcher,
    pub health_waits: HealthWaits,
    pub sources: SourceCache,
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
            .map_err(SetupError::Http)?;
        let fetcher = ArtifactFetcher::new(
            http,
            FetchOptions {
                cache_dir: flags.artifact_cache_dir.clone(),
                max_size: flags.artifact_max_size,
                retries: flags.http_retry,
                max_cached: flags.artifact_cache_size,
                max_cached_bytes: flags.artifact_cache_max_bytes,
                allowed_hosts: flags.artifact_allowed_hosts.clone(),
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
                workload_identity: ObjectLevel {
                    enabled: flags.object_level_workload_identity,
                    default_service_account: flags
                        .default_kubeconfig_service_account()
                        .map(str::to_owned),
                },
            },
            ThrottleLayer::new(runtime.flags.kube_api_qps, runtime.flags.kube_api_burst),
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
            health_waits: HealthWaits::default(),
            sources: SourceCache::default(),
        })
    }
}

/// Runs the Kustomization controller until shutdown.
pub async fn run(context: Arc<Context>) {
    let runtime = context.runtime.clone();
    let kustomizations: Api<Kustomization> = runtime.watched_api();
    let git: Api<GitRepository> = runtime.watched_api();
    let oci: Api<OCIRepository> = runtime.watched_api();
    let buckets: Api<Bucket> = runtime.watched_api();
    let external: Option<Api<ExternalArtifact>> = context
        .flags
        .external_artifact
        .then(|| runtime.watched_api());
    let config_maps: Api<PartialObjectMeta<ConfigMap>> = runtime.watched_api();
    let secrets: Api<PartialObjectMeta<Secret>> = runtime.watched_api();
    let configs = watcher::Config::default().labels(&context.flags.watch_configs_label_selector);
    let drift = context.drift.clone();
    let watch_drift = context.flags.watch_drift;
    let term_context = context.clone();
    ControllerRunner::new(CONTROLLER_NAME, kustomizations.clone(), &runtime)
        .customize(move |controller| {
            let sources = term_context.sources.watch(
                git.clone(),
                oci.clone(),
                buckets.clone(),
                external.clone(),
            );
            let store = controller.store();
            let dependency_store = store.clone();
            let controller = match sources.external {
                Some(stream) => controller.watches_stream(
                    stream,
                    source_trigger(
                        store.clone(),
                        SourceKind::ExternalArtifact,
                        external_revision,
                    ),
                ),
                None => controller,
            };
            let controller = controller
                .watches_stream(
                    sources.git,
                    source_trigger(
                        store.clone(),
                        SourceKind::GitRepository,
                        artifact_revision::<GitRepository>,
                    ),
                )
                .watches_stream(
                    sources.oci,
                    source_trigger(
                        store.clone(),
                        SourceKind::OciRepository,
                        artifact_revision::<OCIRepository>,
                    ),
                )
                .watches_stream(
                    sources.buckets,
                    source_trigger(
                        store.clone(),
                        SourceKind::Bucket,
                        artifact_revision::<Bucket>,
                    ),
                )
                .watches_stream(
                    backing_off(kustomizations.clone(), watcher::Config::default()),
                    move |dependency: Kustomization| dependents_of(&dependency_store, &dependency),
                )
                .watches_stream(
                    backing_off(config_maps.clone(), configs.clone()),
                    config_trigger::<ConfigMap>(store.clone(), false),
                )
                .watches_stream(
                    backing_off(secrets.clone(), configs.clone()),
                    config_trigger::<Secret>(store, true),
                );
            if watch_drift {
                controller.reconcile_on(drift.triggers())
            } else {
                controller
            }
        })
        .run(
            lifecycle::reconcile,
            Arc::new(KustomizationReconciler::new(context.clone())),
        )
        .await;
    context.drift.stop();
    context.runtime.events.flush().await;
}
