//! Looking up the source a Kustomization references and its artifact: from the controller's
//! watch-backed caches of sources, and from the API for sources outside them. ExternalArtifacts
//! are cached and read only with Flux's `ExternalArtifact` gate.

use std::sync::{PoisonError, RwLock};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use sluice_api::SourceObject;
use sluice_api::kustomize::{Kustomization, SourceKind};
use sluice_api::meta::Artifact;
use sluice_api::source::{Bucket, ExternalArtifact, GitRepository, OCIRepository};
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

/// Caches of the watched GitRepositories, OCIRepositories and Buckets, replaced each time the
/// controller's source watches start (each leadership term).
#[derive(Default)]
pub struct SourceCache(RwLock<Option<SourceStores>>);

struct SourceStores {
    git: Store<GitRepository>,
    oci: Store<OCIRepository>,
    buckets: Store<Bucket>,
    external: Option<Store<ExternalArtifact>>,
}

/// A watch stream of sources of kind `K`.
pub type SourceStream<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// The watch streams that fill a [`SourceCache`]; `external` only with the ExternalArtifact gate.
pub struct SourceStreams {
    pub git: SourceStream<GitRepository>,
    pub oci: SourceStream<OCIRepository>,
    pub buckets: SourceStream<Bucket>,
    pub external: Option<SourceStream<ExternalArtifact>>,
}

impl SourceCache {
    /// Starts caching: returns the source watch streams that fill the caches.
    pub fn watch(
        &self,
        git: Api<GitRepository>,
        oci: Api<OCIRepository>,
        buckets: Api<Bucket>,
        external: Option<Api<ExternalArtifact>>,
    ) -> SourceStreams {
        let (git_store, git_stream) = reflect(git);
        let (oci_store, oci_stream) = reflect(oci);
        let (bucket_store, bucket_stream) = reflect(buckets);
        let (external_store, external_stream) = external.map(reflect).unzip();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(SourceStores {
            git: git_store,
            oci: oci_store,
            buckets: bucket_store,
            external: external_store,
        });
        SourceStreams {
            git: git_stream.boxed(),
            oci: oci_stream.boxed(),
            buckets: bucket_stream.boxed(),
            external: external_stream.map(StreamExt::boxed),
        }
    }

    /// The cached source's artifact: `None` when the source is not in the cache.
    fn artifact(&self, kind: SourceKind, namespace: &str, name: &str) -> Option<Option<Artifact>> {
        let stores = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let stores = stores.as_ref()?;
        match kind {
            SourceKind::GitRepository => cached(&stores.git, namespace, name),
            SourceKind::OciRepository => cached(&stores.oci, namespace, name),
            SourceKind::Bucket => cached(&stores.buckets, namespace, name),
            SourceKind::ExternalArtifact => {
                let store = stores.external.as_ref()?;
                let source = store.get(&ObjectRef::new(name).within(namespace))?;
                Some(external_artifact(&source))
            }
        }
    }
}

/// A watch of `api` filling a store (without managed fields, which nothing here reads).
fn reflect<K>(
    api: Api<K>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send,
)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|source| source.meta_mut().managed_fields = None)
        .reflect(writer)
        .applied_objects();
    (store, stream)
}

fn cached<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Option<Artifact>>
where
    K: SourceObject + Resource<DynamicType = ()> + Clone,
{
    let source = store.get(&ObjectRef::new(name).within(namespace))?;
    Some(source.artifact().cloned())
}

/// An ExternalArtifact's `status.artifact`.
pub fn external_artifact(source: &ExternalArtifact) -> Option<Artifact> {
    source.status.as_ref()?.artifact.clone()
}

/// The artifact of the Kustomization's source, `None` while the source has none; read from the
/// cache when the source is in it, else from the API.
pub async fn source_artifact(
    client: &Client,
    cache: &SourceCache,
    kustomization: &Kustomization,
) -> Result<Option<Artifact>, SourceError> {
    let reference = &kustomization.spec.source_ref;
    let namespace = source_namespace(kustomization);
    if let Some(artifact) = cache.artifact(reference.kind, &namespace, &reference.name) {
        return Ok(artifact);
    }
    sluice_artifact::source::source_artifact(client, reference.kind, &namespace, &reference.name)
        .await
}
