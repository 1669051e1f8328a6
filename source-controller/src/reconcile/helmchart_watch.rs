//! HelmCharts react to their source at once, as in Flux: a new source artifact revision enqueues
//! the HelmCharts referencing the source that have not built from that revision yet.

use kube::runtime::reflector::{ObjectRef, Store};
use sluice_api::SourceObject;
use sluice_api::source::{HelmChart, HelmChartSourceKind};

/// Maps a source event to the HelmCharts of `kind` that reference it and whose
/// `observedSourceArtifactRevision` differs from its artifact revision.
pub(super) fn charts_needing<S>(
    store: Store<HelmChart>,
    kind: HelmChartSourceKind,
) -> impl Fn(S) -> Vec<ObjectRef<HelmChart>> + Send + Sync + 'static
where
    S: SourceObject,
{
    move |source: S| {
        let Some(artifact) = source.artifact() else {
            return Vec::new();
        };
        let namespace = source.meta().namespace.clone().unwrap_or_default();
        let name = source.meta().name.clone().unwrap_or_default();
        store
            .state()
            .into_iter()
            .filter(|chart| {
                chart.spec.source_ref.kind == kind
                    && chart.spec.source_ref.name == name
                    && chart.metadata.namespace.as_deref().unwrap_or_default() == namespace
                    && chart
                        .status
                        .as_ref()
                        .and_then(|s| s.observed_source_artifact_revision.as_deref())
                        != Some(artifact.revision.as_str())
            })
            .map(|chart| ObjectRef::from_obj(chart.as_ref()))
            .collect()
    }
}
