//! Looking up the source a Kustomization references and its artifact.

use kube::Client;
use sluice_api::kustomize::Kustomization;
use sluice_api::meta::Artifact;
use sluice_artifact::source::SourceError;

/// The namespace of the referenced source.
pub fn source_namespace(kustomization: &Kustomization) -> String {
    kustomization
        .spec
        .source_ref
        .namespace
        .clone()
        .or_else(|| kustomization.metadata.namespace.clone())
        .unwrap_or_default()
}

/// The artifact of the Kustomization's source, `None` while the source has none.
pub async fn source_artifact(
    client: &Client,
    kustomization: &Kustomization,
) -> Result<Option<Artifact>, SourceError> {
    let reference = &kustomization.spec.source_ref;
    let namespace = source_namespace(kustomization);
    sluice_artifact::source::source_artifact(client, reference.kind, &namespace, &reference.name)
        .await
}
