//! Flux's dependency build for charts from a GitRepository or Bucket: every dependency missing
//! from `charts/` is packaged from its `file://` directory in the source, or downloaded from its
//! HTTP(S) repository or OCI registry, and added as `charts/<name>-<version>.tgz`. A repository
//! is used with the credentials of a HelmRepository in the chart's namespace whose URL matches
//! it, and anonymously otherwise, as in Flux.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, ResourceExt};
use sluice_api::SourceObject;
use sluice_api::meta::condition_type::BUILD_FAILED;
use sluice_api::source::{HelmChart, HelmRepository, HelmRepositoryType};
use sluice_runtime::Outcome;
use sluice_secrets::RegistryAccess;

use super::helmchart::chart_limits;
use super::helmchart_oci::registry_client;
use super::helmchart_remote::read_index;
use super::helmrepository::repository_client;
use super::{SourceContext, step};
use crate::helm::chart::{Chart, ChartLimits};
use crate::helm::dependencies::{self, Dependency, Origin, check_version, normalize_url};
use crate::helm::http::{HelmHttpClient, HelmHttpSettings};
use crate::helm::index::RepositoryIndex;
use crate::helm::oci::{OciChartClient, OciChartRepository};

/// Flux's reason for a failed dependency build.
const DEPENDENCY_BUILD_ERROR: &str = "DependencyBuildError";
/// Timeout of a repository used without a HelmRepository (Flux's default `spec.timeout`).
const ANONYMOUS_TIMEOUT: Duration = Duration::from_secs(60);

/// A dependency build failure (retried: the repository may come back or be fixed).
fn failure(message: impl std::fmt::Display) -> Outcome {
    step::failed(
        BUILD_FAILED,
        DEPENDENCY_BUILD_ERROR,
        format!("dependency build error: {message}"),
    )
}

/// Adds every dependency `chart` (at `chart_dir` in the source unpacked at `root`) lacks.
/// Returns how many were added.
pub(super) async fn build(
    context: &SourceContext,
    object: &HelmChart,
    chart: &mut Chart,
    root: &Path,
    chart_dir: &Path,
) -> Result<usize, Outcome> {
    let declared = dependencies::declared(chart).map_err(failure)?;
    let missing = dependencies::missing(chart, declared);
    if missing.is_empty() {
        return Ok(0);
    }
    let mut resolver = Resolver {
        context,
        namespace: object.namespace().unwrap_or_default(),
        repositories: None,
        indexes: HashMap::new(),
    };
    let limits = chart_limits(context);
    for dependency in &missing {
        let origin = dependencies::origin(dependency, chart_dir).map_err(failure)?;
        let (archive, kind) = match origin {
            Origin::Local(path) => (
                package_local(dependency, root, &path, limits).await?,
                "local",
            ),
            Origin::Http(url) => (resolver.download_http(dependency, &url).await?, "remote"),
            Origin::Oci(url) => (resolver.pull_oci(dependency, &url).await?, "remote"),
        };
        let loaded = Chart::from_archive(&archive, limits).map_err(|e| {
            failure(format!(
                "failed to add {kind} dependency '{}': the chart is invalid: {e}",
                dependency.name
            ))
        })?;
        let path = format!("charts/{}-{}.tgz", loaded.name, loaded.version);
        chart.add_file(path, archive, limits).map_err(|e| {
            failure(format!(
                "failed to add {kind} dependency '{}': {e}",
                dependency.name
            ))
        })?;
    }
    Ok(missing.len())
}

/// Packages the chart directory `path` (relative to `root`) after checking its version.
async fn package_local(
    dependency: &Dependency,
    root: &Path,
    path: &Path,
    limits: ChartLimits,
) -> Result<Vec<u8>, Outcome> {
    let name = dependency.name.clone();
    let constraint = dependency.version.clone();
    let dir = root.join(path);
    let shown = path.display().to_string();
    let packaged = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let meta = std::fs::symlink_metadata(&dir);
        if !meta.is_ok_and(|m| m.is_dir()) {
            return Err(format!("no chart found at '{shown}'"));
        }
        let chart = Chart::from_dir(&dir, limits)
            .map_err(|e| format!("failed to load chart from '{shown}': {e}"))?;
        check_version(&constraint, &chart.version).map_err(|e| e.to_string())?;
        chart.package().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| failure(format!("packaging local dependency '{name}' stopped: {e}")))?;
    packaged.map_err(|message| {
        failure(format!(
            "failed to add local dependency '{name}': {message}"
        ))
    })
}

/// Repository lookups shared by the dependencies of one build.
struct Resolver<'a> {
    context: &'a SourceContext,
    namespace: String,
    /// The namespace's HelmRepositories, listed on first use.
    repositories: Option<Vec<HelmRepository>>,
    /// Indexes by normalised repository URL.
    indexes: HashMap<String, Arc<RepositoryIndex>>,
}

impl Resolver<'_> {
    /// The HelmRepository in the namespace whose normalised URL is `url`, if any.
    async fn repository_for(&mut self, url: &str) -> Result<Option<HelmRepository>, Outcome> {
        if self.repositories.is_none() {
            let api: Api<HelmRepository> =
                Api::namespaced(self.context.runtime.client.clone(), &self.namespace);
            let list = api.list(&ListParams::default()).await.map_err(|e| {
                failure(format!(
                    "listing the HelmRepositories of the namespace failed: {e}"
                ))
            })?;
            self.repositories = Some(list.items);
        }
        Ok(self
            .repositories
            .iter()
            .flatten()
            .find(|repository| normalize_url(&repository.spec.url) == url)
            .cloned())
    }

    /// Downloads `dependency` from the HTTP(S) repository at `url`.
    async fn download_http(
        &mut self,
        dependency: &Dependency,
        url: &str,
    ) -> Result<Vec<u8>, Outcome> {
        let repository = self
            .repository_for(url)
            .await?
            .filter(|r| r.spec.type_ != Some(HelmRepositoryType::Oci));
        let client = match &repository {
            Some(repository) => repository_client(self.context, repository).await?,
            None => anonymous_http(url)?,
        };
        let added = |e: &dyn std::fmt::Display| {
            failure(format!(
                "failed to add remote dependency '{}': {e}",
                dependency.name
            ))
        };
        let index = self.index(url, repository.as_ref(), &client).await?;
        let selected = index
            .select(&dependency.name, &dependency.version)
            .map_err(|e| {
                added(&format!(
                    "failed to get chart '{}' version '{}' from '{}': {e}",
                    dependency.name,
                    dependency.version,
                    sluice_git::display_url(url)
                ))
            })?;
        let reference = selected
            .urls
            .first()
            .ok_or_else(|| added(&"the index entry has no download URL"))?;
        let chart_url = client.resolve(reference).map_err(|e| added(&e))?;
        self.context.check_url(chart_url.as_str()).await?;
        let limit = self.context.helm_limits.max_chart_size;
        client
            .get(&chart_url, limit, "--helm-chart-max-size")
            .await
            .map_err(|e| added(&e))
    }

    /// The repository's index: its HelmRepository's stored artifact, else downloaded.
    async fn index(
        &mut self,
        url: &str,
        repository: Option<&HelmRepository>,
        client: &HelmHttpClient,
    ) -> Result<Arc<RepositoryIndex>, Outcome> {
        if let Some(index) = self.indexes.get(url) {
            return Ok(index.clone());
        }
        let stored = repository.and_then(|r| r.artifact().cloned());
        let shown = sluice_git::display_url(url);
        let index = match stored {
            Some(artifact) => read_index(self.context, &artifact).await?,
            None => {
                let index_url = client.index_url();
                self.context.check_url(index_url.as_str()).await?;
                let limit = self.context.helm_limits.max_index_size;
                let bytes = client
                    .get(&index_url, limit, "--helm-index-max-size")
                    .await
                    .map_err(|e| failure(format!("failed to fetch the index of '{shown}': {e}")))?;
                let parsed = RepositoryIndex::parse(&bytes)
                    .map_err(|e| failure(format!("failed to load the index of '{shown}': {e}")))?;
                Arc::new(parsed)
            }
        };
        self.indexes.insert(url.to_owned(), index.clone());
        Ok(index)
    }

    /// Pulls `dependency` from the registry path `url` (`oci://…`).
    async fn pull_oci(&mut self, dependency: &Dependency, url: &str) -> Result<Vec<u8>, Outcome> {
        let repository = self
            .repository_for(url)
            .await?
            .filter(|r| r.spec.type_ == Some(HelmRepositoryType::Oci));
        let added = |e: &dyn std::fmt::Display| {
            failure(format!(
                "failed to add remote dependency '{}': {e}",
                dependency.name
            ))
        };
        let (registry, client) = match &repository {
            Some(repository) => registry_client(self.context, repository).await?,
            None => {
                let registry = OciChartRepository::parse(url).map_err(|e| added(&e))?;
                self.context.check_url(url).await?;
                let access = RegistryAccess {
                    timeout: ANONYMOUS_TIMEOUT,
                    ..RegistryAccess::default()
                };
                (registry, OciChartClient::new(access))
            }
        };
        let version = client
            .resolve(&registry, &dependency.name, &dependency.version)
            .await
            .map_err(|e| added(&e))?;
        let limit = self.context.helm_limits.max_chart_size;
        client
            .pull(&registry, &dependency.name, &version, None, limit)
            .await
            .map_err(|e| added(&e))
    }
}

/// A client for a repository no HelmRepository describes: anonymous, Flux's default timeout.
fn anonymous_http(url: &str) -> Result<HelmHttpClient, Outcome> {
    let settings = HelmHttpSettings {
        timeout: ANONYMOUS_TIMEOUT,
        ..HelmHttpSettings::default()
    };
    HelmHttpClient::new(url, settings)
        .map_err(|e| failure(format!("invalid dependency repository: {e}")))
}
