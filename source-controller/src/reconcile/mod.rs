//! The source kinds on the shared lifecycle: each kind supplies its steps ([`SourceKind::run`]);
//! the artifact check before them and the storage cleanup on deletion are common to all.

mod artifact;
pub mod bucket;
mod git_verify;
pub mod gitrepository;
pub mod helmchart;
mod helmchart_deps;
mod helmchart_local;
mod helmchart_oci;
mod helmchart_remote;
mod helmchart_verify;
mod helmchart_watch;
pub mod helmrepository;
mod oci_verify;
pub mod ocirepository;
mod registry_access;
mod step;

use std::sync::Arc;

use helmchart_watch::charts_needing;
use kube::Api;
use kube::runtime::{Controller, watcher};
use sluice_api::SourceObject;
use sluice_api::meta::reason;
use sluice_api::source::{Bucket, GitRepository, HelmChart, HelmChartSourceKind, HelmRepository};
use sluice_runtime::lifecycle::{self, LifecycleObject, Policy, ReadyRule, Reconciler};
use sluice_runtime::{ControllerRunner, Failure, Lifecycle, Outcome, RuntimeContext, backing_off};

use crate::status::{READY_AFTER_FAILURE, READY_INPUTS};
use crate::storage::Storage;

/// Everything a reconcile needs: the runtime (client, events, metrics) and the artifact store.
pub struct SourceContext {
    pub runtime: RuntimeContext,
    pub storage: Arc<Storage>,
    /// `--deny-private-source-urls`: refuse URLs resolving to loopback, link-local or private addresses.
    pub deny_private_urls: bool,
    /// Caps on one Bucket fetch.
    pub bucket_limits: bucket::BucketLimits,
    /// Caps on Helm index and chart downloads.
    pub helm_limits: helmrepository::HelmLimits,
    /// Parsed HelmRepository indexes shared by HelmChart reconciles.
    pub helm_index_cache: crate::helm::cache::IndexCache,
}

impl SourceContext {
    /// Applies `--deny-private-source-urls` to `url`; a refusal fails the fetch with `URLInvalid`.
    pub async fn check_url(&self, url: &str) -> Result<(), Outcome> {
        if !self.deny_private_urls {
            return Ok(());
        }
        crate::url_policy::check_source_url(url, std::time::Duration::from_secs(10))
            .await
            .map_err(|error| {
                step::failed(
                    sluice_api::meta::condition_type::FETCH_FAILED,
                    sluice_api::meta::reason::URL_INVALID,
                    error.to_string(),
                )
            })
    }
}

/// A source kind: its storage name and the steps that produce its artifact.
pub trait SourceKind: SourceObject + LifecycleObject {
    /// Kind name used in storage paths and logs.
    const KIND: &'static str;

    /// The kind's steps after the stored artifact was checked; `Err` ends the reconcile.
    fn run(
        context: &SourceContext,
        object: &mut Self,
    ) -> impl Future<Output = Result<(), Outcome>> + Send;
}

/// Runs one source kind's steps inside the shared lifecycle.
pub struct SourceReconciler<K> {
    context: Arc<SourceContext>,
    policy: Policy<K>,
}

impl<K: SourceKind> SourceReconciler<K> {
    /// The reconciler for kind `K`, writing status as the controller.
    pub fn new(context: Arc<SourceContext>) -> Self {
        let policy = Policy {
            status_manager: context.runtime.controller_name.clone(),
            ready: ReadyRule::Summary {
                inputs: READY_INPUTS,
                after_failure: READY_AFTER_FAILURE,
            },
            metric_conditions: &[],
            announce_new_generation: true,
        };
        Self { context, policy }
    }

    /// The context reconciles run with.
    pub fn context(&self) -> &SourceContext {
        &self.context
    }
}

impl<K: SourceKind> Reconciler<K> for SourceReconciler<K> {
    fn runtime(&self) -> &RuntimeContext {
        &self.context.runtime
    }

    fn policy(&self) -> &Policy<K> {
        &self.policy
    }

    async fn reconcile(&self, object: &mut K, _lifecycle: &Lifecycle<'_, K>) -> Outcome {
        let steps = async {
            artifact::reconcile_storage(&self.context, object, K::KIND).await?;
            K::run(&self.context, object).await
        };
        match steps.await {
            Ok(()) => Outcome::Success,
            Err(outcome) => outcome,
        }
    }

    async fn cleanup(&self, object: &K) -> Result<(), Failure> {
        let dir = artifact::object_dir(K::KIND, object);
        let storage = self.context.storage.clone();
        let removed = tokio::task::spawn_blocking(move || storage.remove_object(&dir)).await;
        let failure = match removed {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(error) => error.to_string(),
        };
        Err(Failure::new(
            reason::ARCHIVE_OPERATION_FAILED,
            format!("removing the artifacts of {} failed: {failure}", K::KIND),
        ))
    }
}

/// Runs the GitRepository, OCIRepository, Bucket, HelmRepository and HelmChart controllers until
/// shutdown.
pub async fn run_controllers(context: Arc<SourceContext>) {
    let runtime = &context.runtime;
    let git = ControllerRunner::new("gitrepository", runtime.watched_api(), runtime).run(
        lifecycle::reconcile,
        Arc::new(SourceReconciler::<sluice_api::source::GitRepository>::new(
            context.clone(),
        )),
    );
    let oci = ControllerRunner::new("ocirepository", runtime.watched_api(), runtime).run(
        lifecycle::reconcile,
        Arc::new(SourceReconciler::<sluice_api::source::OCIRepository>::new(
            context.clone(),
        )),
    );
    let bucket = ControllerRunner::new("bucket", runtime.watched_api(), runtime).run(
        lifecycle::reconcile,
        Arc::new(SourceReconciler::<sluice_api::source::Bucket>::new(
            context.clone(),
        )),
    );
    let helm_repository = ControllerRunner::new("helmrepository", runtime.watched_api(), runtime)
        .run(
            helmrepository::reconcile,
            Arc::new(SourceReconciler::<sluice_api::source::HelmRepository>::new(
                context.clone(),
            )),
        );
    let helm_chart = ControllerRunner::new("helmchart", runtime.watched_api(), runtime)
        .customize(helm_chart_triggers(runtime))
        .run(
            lifecycle::reconcile,
            Arc::new(SourceReconciler::<HelmChart>::new(context.clone())),
        );
    tokio::join!(git, oci, bucket, helm_repository, helm_chart);
}

/// HelmChart reconciles triggered by a new artifact revision of a HelmRepository,
/// GitRepository or Bucket they reference.
fn helm_chart_triggers(
    runtime: &RuntimeContext,
) -> impl Fn(Controller<HelmChart>) -> Controller<HelmChart> + Send + Sync + 'static {
    let repositories: Api<HelmRepository> = runtime.watched_api();
    let git: Api<GitRepository> = runtime.watched_api();
    let buckets: Api<Bucket> = runtime.watched_api();
    move |controller| {
        let store = controller.store();
        let config = || watcher::Config::default();
        controller
            .watches_stream(
                backing_off(repositories.clone(), config()),
                charts_needing(store.clone(), HelmChartSourceKind::HelmRepository),
            )
            .watches_stream(
                backing_off(git.clone(), config()),
                charts_needing(store.clone(), HelmChartSourceKind::GitRepository),
            )
            .watches_stream(
                backing_off(buckets.clone(), config()),
                charts_needing(store, HelmChartSourceKind::Bucket),
            )
    }
}
