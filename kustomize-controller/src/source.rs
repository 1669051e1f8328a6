//! Looking up the source a Kustomization references and its artifact.

use kube::{Api, Client};
use sluice_api::SourceObject;
use sluice_api::kustomize::{Kustomization, SourceKind};
use sluice_api::meta::Artifact;
use sluice_api::source::{Bucket, GitRepository, OCIRepository};

/// Reading the source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("Source '{kind}/{namespace}/{name}' not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("reading Source '{kind}/{namespace}/{name}' failed: {reason}")]
    Read {
        kind: &'static str,
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "sourceRef kind ExternalArtifact is not supported (Flux's ExternalArtifact feature gate is off by default); use GitRepository, OCIRepository or Bucket"
    )]
    ExternalArtifact,
}

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

async fn artifact<K>(
    client: &Client,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<Option<Artifact>, SourceError>
where
    K: SourceObject + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(source)) => Ok(source.artifact().cloned()),
        Ok(None) => Err(SourceError::NotFound {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }),
        Err(error) => Err(SourceError::Read {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// The artifact of the Kustomization's source, `None` while the source has none.
pub async fn source_artifact(
    client: &Client,
    kustomization: &Kustomization,
) -> Result<Option<Artifact>, SourceError> {
    let reference = &kustomization.spec.source_ref;
    let namespace = source_namespace(kustomization);
    let name = reference.name.as_str();
    match reference.kind {
        SourceKind::GitRepository => {
            artifact::<GitRepository>(client, "GitRepository", &namespace, name).await
        }
        SourceKind::OciRepository => {
            artifact::<OCIRepository>(client, "OCIRepository", &namespace, name).await
        }
        SourceKind::Bucket => artifact::<Bucket>(client, "Bucket", &namespace, name).await,
        SourceKind::ExternalArtifact => Err(SourceError::ExternalArtifact),
    }
}
