//! HelmChart from a GitRepository or Bucket: the chart directory in the source artifact,
//! versioned from its `Chart.yaml` (plus Flux's build metadata), its missing dependencies added
//! and packaged.

use std::path::{Path, PathBuf};

use sluice_api::meta::condition_type::{FETCH_FAILED, STORAGE_OPERATION_FAILED};
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::{HelmChart, HelmChartReconcileStrategy};
use sluice_artifact::archive::safe_relative_path;
use sluice_runtime::{ObjectEvent, Outcome};

use super::helmchart::{
    Build, CHART_PACKAGE_ERROR, INVALID_CHART_REFERENCE, build_failure, chart_limits,
    effective_values_files, package, up_to_date,
};
use super::{SourceContext, step};
use crate::helm::chart::{Chart, with_build_metadata};

/// A chart directory from a GitRepository or Bucket artifact, packaged.
pub(super) async fn from_tarball(
    context: &SourceContext,
    object: &mut HelmChart,
    artifact: Artifact,
) -> Result<Build, Outcome> {
    let chart_path = safe_relative_path(Path::new(&object.spec.chart))
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| {
            step::stalled(
                INVALID_CHART_REFERENCE,
                format!(
                    "invalid chart reference: spec.chart '{}' must be a relative path inside the source",
                    object.spec.chart
                ),
            )
        })?;
    let scratch = tempfile::Builder::new()
        .prefix("helmchart-")
        .tempdir()
        .map_err(|e| {
            step::failed(
                STORAGE_OPERATION_FAILED,
                reason::DIRECTORY_CREATION_FAILED,
                format!("failed to create temporary working directory: {e}"),
            )
        })?;
    let storage = context.storage.clone();
    let (path, root) = (artifact.path.clone(), scratch.path().to_path_buf());
    tokio::task::spawn_blocking(move || storage.extract(&path, None, &root))
        .await
        .map_err(|e| step::storage_task(reason::READ_OPERATION_FAILED, &e))?
        .map_err(|e| {
            step::failed(
                FETCH_FAILED,
                reason::READ_OPERATION_FAILED,
                format!("artifact untar error: {e}"),
            )
        })?;
    let limits = chart_limits(context);
    let root = scratch.path().to_path_buf();
    let dir = root.join(&chart_path);
    let loaded = tokio::task::spawn_blocking(move || Chart::from_dir(&dir, limits))
        .await
        .map_err(|e| step::storage_task(reason::READ_OPERATION_FAILED, &e))?;
    let mut chart = loaded.map_err(|e| {
        step::failed(
            FETCH_FAILED,
            INVALID_CHART_REFERENCE,
            format!(
                "invalid chart reference: failed to load chart at '{}': {e}",
                object.spec.chart
            ),
        )
    })?;
    let version = local_version(object, &chart.version, &artifact.revision)?;
    if up_to_date(object, &chart.name, &version) {
        let observed = object
            .status
            .as_ref()
            .map(|s| s.observed_values_files.clone());
        return Ok(Build {
            name: chart.name,
            version,
            archive: None,
            packaged: true,
            values_files: observed.unwrap_or_default(),
        });
    }
    let resolved =
        super::helmchart_deps::build(context, object, &mut chart, &root, &chart_path).await?;
    if resolved > 0 {
        let message = format!("resolved {resolved} chart dependencies");
        let event = ObjectEvent::trace("ResolvedDependencies", message);
        context.runtime.events.publish(&*object, event).await;
    }
    build_local(object, chart, &version, &root)
}

fn build_local(
    object: &HelmChart,
    mut chart: Chart,
    version: &str,
    root: &Path,
) -> Result<Build, Outcome> {
    let values_files = &effective_values_files(object);
    let mut used = Vec::new();
    if !values_files.is_empty() {
        let read = |path: &str| -> Option<Vec<u8>> {
            let clean: PathBuf = safe_relative_path(Path::new(path))?;
            let file = root.join(clean);
            let meta = std::fs::symlink_metadata(&file).ok()?;
            meta.is_file().then(|| std::fs::read(&file).ok()).flatten()
        };
        used = chart
            .merge_values_files(values_files, object.spec.ignore_missing_values_files, read)
            .map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))?;
    }
    package(chart, version, used)
}

/// The version of a chart from Git or a Bucket: `Chart.yaml`'s, with `+<revision prefix>` under
/// `reconcileStrategy: Revision` and `.<generation>` (or `+<generation>`) with values files.
fn local_version(object: &HelmChart, version: &str, revision: &str) -> Result<String, Outcome> {
    let mut metadata = String::new();
    if object.spec.reconcile_strategy == Some(HelmChartReconcileStrategy::Revision) {
        let hash = revision.rsplit(':').next().unwrap_or(revision);
        metadata = hash.chars().take(12).collect();
    }
    if !effective_values_files(object).is_empty() {
        if !metadata.is_empty() {
            metadata.push('.');
        }
        let generation = object.metadata.generation.unwrap_or_default();
        metadata.push_str(&generation.to_string());
    }
    if metadata.is_empty() {
        return Ok(version.to_owned());
    }
    with_build_metadata(version, &metadata).map_err(|e| build_failure(CHART_PACKAGE_ERROR, &e))
}
