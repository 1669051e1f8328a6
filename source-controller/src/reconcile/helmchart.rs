//! HelmChart steps: resolve the chart from its source (a HelmRepository index, or a chart
//! directory in a GitRepository or Bucket artifact), build it as Flux does (values files merged,
//! version metadata appended) and store the chart archive. The revision is the chart version.

use std::path::Path;
use std::sync::Arc;

use kube::{Api, ResourceExt};
use sluice_api::meta::condition_type::{ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED};
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::{
    Bucket, GitRepository, HelmChart, HelmChartSourceKind, HelmRepository, HelmRepositoryType,
};
use sluice_api::{FluxObject, SourceObject};
use sluice_artifact::archive::safe_relative_path;
use sluice_runtime::{Outcome, conditions};

use super::artifact::{Publication, object_dir, publish_artifact};
use super::helmrepository::repository_client;
use super::{SourceContext, SourceKind, step};
use crate::helm::chart::{Chart, ChartError, ChartLimits, VALUES_FILE, with_build_metadata};
use crate::helm::index::{ChartVersion, RepositoryIndex};
use crate::status;
use crate::storage::StoredFile;

/// Flux's reasons for chart builds.
const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";
const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";
const NO_SOURCE_ARTIFACT: &str = "NoSourceArtifact";
pub(super) const INVALID_CHART_REFERENCE: &str = "InvalidChartReference";
const CHART_PULL_ERROR: &str = "ChartPullError";
const VALUES_FILES_ERROR: &str = "ValuesFilesError";
pub(super) const CHART_PACKAGE_ERROR: &str = "ChartPackageError";

/// A resolved chart: what it is and, when it must be stored, its archive.
pub(super) struct Build {
    pub(super) name: String,
    pub(super) version: String,
    /// The archive to store; `None` when the stored artifact already is this chart.
    pub(super) archive: Option<Vec<u8>>,
    pub(super) packaged: bool,
    pub(super) values_files: Vec<String>,
}

impl Build {
    /// Flux's build summary, the message of `ArtifactInStorage` and of the event.
    fn summary(&self) -> String {
        let action = if self.packaged { "packaged" } else { "pulled" };
        let mut text = format!(
            "{action} '{}' chart with version '{}'",
            self.name, self.version
        );
        if !self.values_files.is_empty() {
            text.push_str(&format!(
                " and merged values files [{}]",
                self.values_files.join(" ")
            ));
        }
        text
    }

    fn reason(&self) -> &'static str {
        if self.packaged {
            CHART_PACKAGE_SUCCEEDED
        } else {
            CHART_PULL_SUCCEEDED
        }
    }
}

impl SourceKind for HelmChart {
    const KIND: &'static str = "HelmChart";

    async fn run(context: &SourceContext, object: &mut HelmChart) -> Result<(), Outcome> {
        if object.spec.verification.is_some() {
            return Err(step::stalled(
                "VerifyNotSupported",
                "spec.verify (cosign/notation verification of OCI charts) is not supported by this source-controller; remove it",
            ));
        }
        let build = match object.spec.source_ref.kind {
            HelmChartSourceKind::HelmRepository => from_repository(context, object).await?,
            HelmChartSourceKind::GitRepository => {
                let (artifact, _) = source_artifact::<GitRepository>(context, object).await?;
                super::helmchart_local::from_tarball(context, object, artifact).await?
            }
            HelmChartSourceKind::Bucket => {
                let (artifact, _) = source_artifact::<Bucket>(context, object).await?;
                super::helmchart_local::from_tarball(context, object, artifact).await?
            }
        };
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        conditions::remove(
            object.conditions_mut(),
            sluice_api::meta::condition_type::BUILD_FAILED,
        );
        publish(context, object, build).await
    }
}

/// Stores a new chart archive, or confirms the stored one, and records the observations.
async fn publish(
    context: &SourceContext,
    object: &mut HelmChart,
    build: Build,
) -> Result<(), Outcome> {
    let generation = object.metadata.generation;
    let summary = build.summary();
    if let Some(archive) = &build.archive {
        if object.artifact().is_some() {
            status::mark_true(
                object.conditions_mut(),
                ARTIFACT_OUTDATED,
                "NewChart",
                &summary,
                generation,
            );
        }
        status::mark_progressing(
            object.conditions_mut(),
            &format!("building artifact: {summary}"),
            generation,
        );
        let stored = store(context, object, archive.clone()).await?;
        let publication = Publication {
            stored,
            stored_message: summary.clone(),
            new_artifact_message: summary.clone(),
            revision: build.version.clone(),
            metadata: Default::default(),
            committed_at: None,
        };
        let artifact = publish_artifact(context, object, HelmChart::KIND, publication).await;
        object.status.get_or_insert_with(Default::default).url = Some(artifact.url);
    }
    conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
    status::mark_true(
        object.conditions_mut(),
        ARTIFACT_IN_STORAGE,
        build.reason(),
        &summary,
        generation,
    );
    let ignore_missing = object.spec.ignore_missing_values_files;
    let status = object.status.get_or_insert_with(Default::default);
    status.observed_chart_name = Some(build.name);
    status.observed_values_files = if ignore_missing {
        build.values_files
    } else {
        Vec::new()
    };
    Ok(())
}

/// The source's artifact (and revision); a missing source or artifact waits for it.
async fn source_artifact<S>(
    context: &SourceContext,
    object: &mut HelmChart,
) -> Result<(Artifact, S), Outcome>
where
    S: SourceObject
        + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let reference = &object.spec.source_ref;
    let kind = S::kind(&()).into_owned();
    let api: Api<S> = Api::namespaced(
        context.runtime.client.clone(),
        &object.namespace().unwrap_or_default(),
    );
    let source = match api.get_opt(&reference.name).await {
        Ok(Some(source)) => source,
        Ok(None) => {
            return Err(step::waiting(
                FETCH_FAILED,
                SOURCE_UNAVAILABLE,
                format!(
                    "failed to get source: {kind} '{}' not found; create it or fix spec.sourceRef",
                    reference.name
                ),
            ));
        }
        Err(e) => {
            return Err(step::failed(
                FETCH_FAILED,
                SOURCE_UNAVAILABLE,
                format!("failed to get source: {e}"),
            ));
        }
    };
    let no_artifact = || {
        step::waiting(
            FETCH_FAILED,
            NO_SOURCE_ARTIFACT,
            format!(
                "no artifact available for {kind} source '{}'",
                reference.name
            ),
        )
    };
    let artifact = source.artifact().cloned().ok_or_else(no_artifact)?;
    let storage = context.storage.clone();
    let path = artifact.path.clone();
    let exists = tokio::task::spawn_blocking(move || {
        storage.resolve(&path).map(|p| p.is_file()).unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if !exists {
        return Err(no_artifact());
    }
    object
        .status
        .get_or_insert_with(Default::default)
        .observed_source_artifact_revision = Some(artifact.revision.clone());
    Ok((artifact, source))
}

/// Whether the stored artifact already holds chart `name` at `version` for this generation.
pub(super) fn up_to_date(object: &HelmChart, name: &str, version: &str) -> bool {
    let status = object.status.as_ref();
    object.artifact().is_some_and(|a| a.revision == version)
        && status.and_then(|s| s.observed_chart_name.as_deref()) == Some(name)
        && object.observed_generation() == object.metadata.generation
}

pub(super) fn chart_limits(context: &SourceContext) -> ChartLimits {
    ChartLimits {
        max_size: context.helm_limits.max_chart_size,
        max_file_size: context.helm_limits.max_chart_file_size,
    }
}

/// A build error: persistent ones (Flux's) stall, the others are retried.
pub(super) fn build_failure(reason: &'static str, error: &ChartError) -> Outcome {
    match error {
        ChartError::MissingValuesFile(_) | ChartError::Values { .. } => step::stalled(
            VALUES_FILES_ERROR,
            format!("values files merge error: {error}"),
        ),
        ChartError::Version { .. } => step::stalled(
            "MetadataPatchError",
            format!("chart metadata patch error: {error}"),
        ),
        _ => step::failed(
            sluice_api::meta::condition_type::BUILD_FAILED,
            reason,
            format!("chart package error: {error}"),
        ),
    }
}

/// A chart from a HelmRepository index: the newest version matching `spec.version`.
async fn from_repository(
    context: &SourceContext,
    object: &mut HelmChart,
) -> Result<Build, Outcome> {
    let (artifact, repository) = source_artifact::<HelmRepository>(context, object).await?;
    if repository.spec.type_ == Some(HelmRepositoryType::Oci) {
        return Err(step::stalled(
            "OCIChartNotSupported",
            format!(
                "spec.sourceRef: HelmRepository '{}' is of type 'oci'; charts from OCI registries are not supported by this source-controller yet",
                repository.name_any()
            ),
        ));
    }
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
    let values_files = effective_values_files(object);
    let mut version = selected.version.clone();
    if !values_files.is_empty() {
        let generation = object.metadata.generation.unwrap_or_default();
        version = with_build_metadata(&version, &generation.to_string())
            .map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))?;
    }
    let packaged = !values_files.is_empty();
    if up_to_date(object, &selected.name, &version) {
        let observed = object
            .status
            .as_ref()
            .map(|s| s.observed_values_files.clone());
        return Ok(Build {
            name: selected.name,
            version,
            archive: None,
            packaged,
            values_files: observed.unwrap_or_default(),
        });
    }
    let bytes = pull(context, &repository, &selected).await?;
    let limits = chart_limits(context);
    let mut chart = Chart::from_archive(&bytes, limits).map_err(|e| {
        step::failed(
            FETCH_FAILED,
            CHART_PULL_ERROR,
            format!("chart pull error: the downloaded chart is invalid: {e}"),
        )
    })?;
    if !packaged {
        return Ok(Build {
            name: chart.name,
            version,
            archive: Some(bytes),
            packaged,
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

/// `spec.valuesFiles`, except that `[values.yaml]` alone means none, as in Flux.
pub(super) fn effective_values_files(object: &HelmChart) -> Vec<String> {
    let files = &object.spec.values_files;
    let only_default = files.len() == 1
        && safe_relative_path(Path::new(&files[0])).is_some_and(|p| p == Path::new(VALUES_FILE));
    if only_default {
        Vec::new()
    } else {
        files.clone()
    }
}

/// A values file inside a pulled chart (`./` prefixes allowed).
fn chart_file(chart: &Chart, path: &str) -> Option<Vec<u8>> {
    let clean = safe_relative_path(Path::new(path))?;
    chart
        .files
        .get(&clean.to_string_lossy().replace('\\', "/"))
        .cloned()
}

pub(super) fn package(
    mut chart: Chart,
    version: &str,
    used: Vec<String>,
) -> Result<Build, Outcome> {
    chart
        .set_version(version)
        .map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))?;
    let archive = chart
        .package()
        .map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))?;
    Ok(Build {
        name: chart.name,
        version: version.to_owned(),
        archive: Some(archive),
        packaged: true,
        values_files: used,
    })
}

/// Reads and parses a HelmRepository's stored index.
async fn read_index(
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

async fn store(
    context: &SourceContext,
    object: &HelmChart,
    bytes: Vec<u8>,
) -> Result<StoredFile, Outcome> {
    let storage = context.storage.clone();
    let dir = object_dir(HelmChart::KIND, object);
    tokio::task::spawn_blocking(move || {
        storage
            .store_stream(&mut bytes.as_slice(), &dir)
            .map_err(|e| step::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| step::storage_task(reason::ARCHIVE_OPERATION_FAILED, &e))?
}
