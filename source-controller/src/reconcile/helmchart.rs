//! HelmChart steps: resolve the chart from its source (a HelmRepository index or OCI registry,
//! or a chart directory in a GitRepository or Bucket artifact), build it as Flux does (values
//! files merged, dependencies added, version metadata appended) and store the chart archive.
//! The revision is the chart version.

use std::path::Path;

use kube::{Api, ResourceExt};
use sluice_api::meta::condition_type::{ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED};
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::{Bucket, GitRepository, HelmChart, HelmChartSourceKind};
use sluice_api::{FluxObject, SourceObject};
use sluice_artifact::archive::safe_relative_path;
use sluice_runtime::{Outcome, conditions};

use super::artifact::{Publication, object_dir, publish_artifact};
use super::{SourceContext, SourceKind, step};
use crate::helm::chart::{Chart, ChartError, ChartLimits, VALUES_FILE};
use crate::status;
use crate::storage::StoredFile;

/// Flux's reasons for chart builds.
const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";
const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";
const NO_SOURCE_ARTIFACT: &str = "NoSourceArtifact";
pub(super) const INVALID_CHART_REFERENCE: &str = "InvalidChartReference";
pub(super) const CHART_PULL_ERROR: &str = "ChartPullError";
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
        super::helmchart_verify::reset_verification(object);
        let build = match object.spec.source_ref.kind {
            HelmChartSourceKind::HelmRepository => {
                super::helmchart_remote::from_repository(context, object).await?
            }
            HelmChartSourceKind::GitRepository => {
                let artifact = source_artifact::<GitRepository>(context, object).await?;
                super::helmchart_local::from_tarball(context, object, artifact).await?
            }
            HelmChartSourceKind::Bucket => {
                let artifact = source_artifact::<Bucket>(context, object).await?;
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

/// The source `spec.sourceRef` names; a missing one waits for it.
pub(super) async fn fetch_source<S>(
    context: &SourceContext,
    object: &HelmChart,
) -> Result<S, Outcome>
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
    match api.get_opt(&reference.name).await {
        Ok(Some(source)) => Ok(source),
        Ok(None) => Err(step::waiting(
            FETCH_FAILED,
            SOURCE_UNAVAILABLE,
            format!(
                "failed to get source: {kind} '{}' not found; create it or fix spec.sourceRef",
                reference.name
            ),
        )),
        Err(e) => Err(step::failed(
            FETCH_FAILED,
            SOURCE_UNAVAILABLE,
            format!("failed to get source: {e}"),
        )),
    }
}

/// The source's stored artifact, recorded as observed; a source without one waits for it.
pub(super) async fn stored_artifact<S: SourceObject>(
    context: &SourceContext,
    object: &mut HelmChart,
    source: &S,
) -> Result<Artifact, Outcome> {
    let reference = &object.spec.source_ref;
    let kind = S::kind(&()).into_owned();
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
    Ok(artifact)
}

/// The artifact of a GitRepository or Bucket source.
async fn source_artifact<S>(
    context: &SourceContext,
    object: &mut HelmChart,
) -> Result<Artifact, Outcome>
where
    S: SourceObject
        + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let source: S = fetch_source(context, object).await?;
    stored_artifact(context, object, &source).await
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
