//! HelmChart from a HelmRepository: the newest chart version matching `spec.version` from the
//! repository's stored index (type `default`) or from the registry's tags (type `oci`), pulled
//! with the repository's credentials, stored as pulled or repackaged with values files.

use std::path::Path;
use std::sync::Arc;

use sluice_api::meta::condition_type::FETCH_FAILED;
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::{HelmChart, HelmRepository, HelmRepositoryType};
use sluice_artifact::archive::safe_relative_path;
use sluice_runtime::Outcome;

use super::helmchart::{
    Build, CHART_PACKAGE_ERROR, CHART_PULL_ERROR, INVALID_CHART_REFERENCE, build_failure,
    chart_limits, effective_values_files, fetch_source, package, stored_artifact, up_to_date,
};
use super::helmrepository::repository_client;
use super::{SourceContext, step};
use crate::helm::chart::{Chart, with_build_metadata};
use crate::helm::index::{ChartVersion, RepositoryIndex};

/// A chart from a HelmRepository: an index entry, or a registry tag for `type: oci`.
pub(super) async fn from_repository(
    context: &SourceContext,
    object: &mut HelmChart,
) -> Result<Build, Outcome> {
    let repository: HelmRepository = fetch_source(context, object).await?;
    if repository.spec.type_ == Some(HelmRepositoryType::Oci) {
        return super::helmchart_oci::from_registry(context, object, &repository).await;
    }
    super::helmchart_verify::refuse_chart_repository(object)?;
    let artifact = stored_artifact(context, object, &repository).await?;
    let index = read_index(context, &artifact).await?;
    let chart_name = object.spec.chart.clone();
    let range = object.spec.version.clone().unwrap_or_else(|| "*".into());
    let selected = index.select(&chart_name, &range).map_err(|e| {
        step::failed(
            FETCH_FAILED,
            INVALID_CHART_REFERENCE,
            format!(
                "invalid chart reference: failed to get chart version for remote reference: {e}"
            ),
        )
    })?;
    let version = remote_version(object, &selected.version)?;
    if let Some(cached) = cached_build(object, &selected.name, &version) {
        return Ok(cached);
    }
    let bytes = pull(context, &repository, &selected).await?;
    build_pulled(context, object, bytes, version)
}

/// The revision of a pulled chart: its version, with `+<generation>` when values files apply.
pub(super) fn remote_version(object: &HelmChart, version: &str) -> Result<String, Outcome> {
    if effective_values_files(object).is_empty() {
        return Ok(version.to_owned());
    }
    let generation = object.metadata.generation.unwrap_or_default();
    with_build_metadata(version, &generation.to_string())
        .map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))
}

/// The build confirming the stored artifact, when it already holds `name` at `version`.
pub(super) fn cached_build(object: &HelmChart, name: &str, version: &str) -> Option<Build> {
    if !up_to_date(object, name, version) {
        return None;
    }
    let observed = object
        .status
        .as_ref()
        .map(|s| s.observed_values_files.clone());
    Some(Build {
        name: name.to_owned(),
        version: version.to_owned(),
        archive: None,
        packaged: !effective_values_files(object).is_empty(),
        values_files: observed.unwrap_or_default(),
    })
}

/// A pulled chart archive: stored as pulled, or repackaged with `spec.valuesFiles` merged.
pub(super) fn build_pulled(
    context: &SourceContext,
    object: &HelmChart,
    bytes: Vec<u8>,
    version: String,
) -> Result<Build, Outcome> {
    let mut chart = Chart::from_archive(&bytes, chart_limits(context)).map_err(|e| {
        step::failed(
            FETCH_FAILED,
            CHART_PULL_ERROR,
            format!("chart pull error: the downloaded chart is invalid: {e}"),
        )
    })?;
    let values_files = effective_values_files(object);
    if values_files.is_empty() {
        return Ok(Build {
            name: chart.name,
            version,
            archive: Some(bytes),
            packaged: false,
            values_files,
        });
    }
    let pulled = chart.clone();
    let used = chart
        .merge_values_files(
            &values_files,
            object.spec.ignore_missing_values_files,
            |p| chart_file(&pulled, p),
        )
        .map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))?;
    package(chart, &version, used)
}

/// Downloads a chart version with its repository's credentials and TLS settings.
async fn pull(
    context: &SourceContext,
    repository: &HelmRepository,
    selected: &ChartVersion,
) -> Result<Vec<u8>, Outcome> {
    let client = repository_client(context, repository).await?;
    let reference = selected.urls.first().ok_or_else(|| {
        step::failed(
            FETCH_FAILED,
            CHART_PULL_ERROR,
            format!(
                "chart pull error: chart '{}' version '{}' has no download URL in the index",
                selected.name, selected.version
            ),
        )
    })?;
    let pull_failed = |e: &dyn std::fmt::Display| {
        step::failed(
            FETCH_FAILED,
            CHART_PULL_ERROR,
            format!("chart pull error: failed to download chart for remote reference: {e}"),
        )
    };
    let url = client.resolve(reference).map_err(|e| pull_failed(&e))?;
    context.check_url(url.as_str()).await?;
    let bytes = client
        .get(
            &url,
            context.helm_limits.max_chart_size,
            "--helm-chart-max-size",
        )
        .await
        .map_err(|e| pull_failed(&e))?;
    Ok(bytes)
}

/// A values file inside a pulled chart (`./` prefixes allowed).
fn chart_file(chart: &Chart, path: &str) -> Option<Vec<u8>> {
    let clean = safe_relative_path(Path::new(path))?;
    chart
        .files
        .get(&clean.to_string_lossy().replace('\\', "/"))
        .cloned()
}

/// Reads and parses a HelmRepository's stored index.
pub(super) async fn read_index(
    context: &SourceContext,
    artifact: &Artifact,
) -> Result<Arc<RepositoryIndex>, Outcome> {
    if let Some(index) = context.helm_index_cache.get(&artifact.path) {
        return Ok(index);
    }
    let storage = context.storage.clone();
    let path = artifact.path.clone();
    let limit = context.helm_limits.max_index_size;
    let read = tokio::task::spawn_blocking(move || {
        let file = storage.resolve(&path).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&file).map_err(|e| e.to_string())?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "the index exceeds {limit} bytes; raise --helm-index-max-size"
            ));
        }
        RepositoryIndex::parse(&bytes).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| step::storage_task(reason::READ_OPERATION_FAILED, &e))?;
    let index = Arc::new(read.map_err(|message| {
        step::failed(
            FETCH_FAILED,
            reason::READ_OPERATION_FAILED,
            format!("failed to load the HelmRepository index from storage: {message}"),
        )
    })?);
    context
        .helm_index_cache
        .insert(&artifact.path, index.clone());
    Ok(index)
}
