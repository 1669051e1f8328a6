//! Looking up a source object's `status.artifact` by the kind, namespace and name of a `sourceRef`.

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client};
use sluice_api::SourceObject;
use sluice_api::kustomize::SourceKind;
use sluice_api::meta::Artifact;
use sluice_api::source::{Bucket, ExternalArtifact, GitRepository, OCIRepository};

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
}

async fn artifact<K>(
    client: &Client,
    kind: &'static str,
    namespace: &str,
    name: &str,
    artifact_of: fn(&K) -> Option<&Artifact>,
) -> Result<Option<Artifact>, SourceError>
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(source)) => Ok(artifact_of(&source).cloned()),
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

/// The artifact of source `kind` `namespace/name`, `None` while the source has none.
pub async fn source_artifact(
    client: &Client,
    kind: SourceKind,
    namespace: &str,
    name: &str,
) -> Result<Option<Artifact>, SourceError> {
    let kind_name = kind.as_str();
    match kind {
        SourceKind::GitRepository => {
            artifact::<GitRepository>(client, kind_name, namespace, name, SourceObject::artifact)
                .await
        }
        SourceKind::OciRepository => {
            artifact::<OCIRepository>(client, kind_name, namespace, name, SourceObject::artifact)
                .await
        }
        SourceKind::Bucket => {
            artifact::<Bucket>(client, kind_name, namespace, name, SourceObject::artifact).await
        }
        SourceKind::ExternalArtifact => {
            artifact::<ExternalArtifact>(client, kind_name, namespace, name, external_artifact)
                .await
        }
    }
}

fn external_artifact(source: &ExternalArtifact) -> Option<&Artifact> {
    source.status.as_ref()?.artifact.as_ref()
}
