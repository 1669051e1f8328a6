//! What else triggers a Kustomization: a new artifact revision of its source, a dependency
//! becoming Ready, and a change to a ConfigMap or Secret it references.

use std::sync::Arc;

use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use sluice_api::kustomize::{Kustomization, SourceKind, SubstituteKind};
use sluice_api::meta::condition_type::READY;
use sluice_api::source::ExternalArtifact;
use sluice_api::{FluxObject, SourceObject};
use sluice_runtime::conditions::is_true;

use crate::source::{external_artifact, source_namespace};

/// Kustomizations in `store` reading the source `kind/namespace/name` whose last attempt was
/// not at `revision`.
fn needing_revision(
    store: &Store<Kustomization>,
    kind: SourceKind,
    namespace: &str,
    name: &str,
    revision: &str,
) -> Vec<ObjectRef<Kustomization>> {
    let mut matching: Vec<Arc<Kustomization>> = store
        .state()
        .into_iter()
        .filter(|ks| {
            ks.spec.source_ref.kind == kind
                && ks.spec.source_ref.name == name
                && source_namespace(ks) == namespace
                && ks
                    .status
                    .as_ref()
                    .and_then(|status| status.last_attempted_revision.as_deref())
                    != Some(revision)
        })
        .collect();
    matching.sort_by_key(|ks| ks.spec.depends_on.len());
    matching
        .iter()
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// The artifact revision of a Flux source.
pub(super) fn artifact_revision<S: SourceObject>(source: &S) -> Option<String> {
    source.artifact().map(|artifact| artifact.revision.clone())
}

/// The artifact revision of an ExternalArtifact.
pub(super) fn external_revision(source: &ExternalArtifact) -> Option<String> {
    external_artifact(source).map(|artifact| artifact.revision)
}

/// Maps a source to the Kustomizations that have not attempted its artifact revision yet.
pub(super) fn source_trigger<S>(
    store: Store<Kustomization>,
    kind: SourceKind,
    revision_of: fn(&S) -> Option<String>,
) -> impl Fn(S) -> Vec<ObjectRef<Kustomization>> + Send + Sync + 'static
where
    S: Resource + 'static,
{
    move |source: S| {
        let Some(revision) = revision_of(&source) else {
            return Vec::new();
        };
        let namespace = source.meta().namespace.clone().unwrap_or_default();
        let name = source.meta().name.clone().unwrap_or_default();
        needing_revision(&store, kind, &namespace, &name, &revision)
    }
}

/// Dependents of `dependency` that are not Ready, to retry them as soon as it becomes Ready.
pub(super) fn dependents_of(
    store: &Store<Kustomization>,
    dependency: &Kustomization,
) -> Vec<ObjectRef<Kustomization>> {
    if !is_true(dependency.conditions(), READY) {
        return Vec::new();
    }
    let namespace = dependency.metadata.namespace.clone().unwrap_or_default();
    let name = dependency.metadata.name.clone().unwrap_or_default();
    store
        .state()
        .into_iter()
        .filter(|ks| !is_true(ks.conditions(), READY))
        .filter(|ks| {
            let own = ks.metadata.namespace.clone().unwrap_or_default();
            ks.spec.depends_on.iter().any(|dep| {
                dep.name == name && dep.namespace.as_deref().unwrap_or(&own) == namespace
            })
        })
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// Kustomizations in `store` that reference the ConfigMap (or, with `secret`, the Secret)
/// `namespace/name`: `substituteFrom`, `kubeConfig.configMapRef` or `.secretRef`, and for
/// Secrets `decryption.secretRef`.
fn referencing(
    store: &Store<Kustomization>,
    secret: bool,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<Kustomization>> {
    let wanted = if secret {
        SubstituteKind::Secret
    } else {
        SubstituteKind::ConfigMap
    };
    store
        .state()
        .into_iter()
        .filter(|ks| ks.metadata.namespace.as_deref() == Some(namespace))
        .filter(|ks| {
            let spec = &ks.spec;
            let substitutes = spec.post_build.as_ref().is_some_and(|post_build| {
                post_build
                    .substitute_from
                    .iter()
                    .any(|reference| reference.kind == wanted && reference.name == name)
            });
            let decrypts = spec
                .decryption
                .as_ref()
                .and_then(|decryption| decryption.secret_ref.as_ref())
                .is_some_and(|reference| reference.name == name);
            let connects = spec.kube_config.as_ref().is_some_and(|config| {
                let reference = if secret {
                    config.secret_ref.as_ref().map(|reference| &reference.name)
                } else {
                    config
                        .config_map_ref
                        .as_ref()
                        .map(|reference| &reference.name)
                };
                reference.is_some_and(|reference| reference == name)
            });
            substitutes || connects || (secret && decrypts)
        })
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// Maps a change to a watched ConfigMap or Secret (`secret`) to the Kustomizations that use it.
pub(super) fn config_trigger<K>(
    store: Store<Kustomization>,
    secret: bool,
) -> impl Fn(PartialObjectMeta<K>) -> Vec<ObjectRef<Kustomization>> + Send + Sync + 'static {
    move |object: PartialObjectMeta<K>| {
        let namespace = object.metadata.namespace.unwrap_or_default();
        let name = object.metadata.name.unwrap_or_default();
        referencing(&store, secret, &namespace, &name)
    }
}
