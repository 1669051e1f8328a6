//! Asking each resource of a Receiver to reconcile: a merge patch of
//! `reconcile.fluxcd.io/requestedAt`, by name or by `matchLabels` with name `*`.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_api::notification::{Receiver, ReceiverResource};

/// Most kinds whose API resource is remembered; the cache is emptied when full.
const MAX_KINDS: usize = 64;

/// Flux's default `apiVersion` for kinds a Receiver may name without one.
fn default_api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "Bucket" | "HelmChart" | "HelmRepository" | "GitRepository" | "OCIRepository" => {
            Some("source.toolkit.fluxcd.io/v1")
        }
        "ImageRepository" => Some("image.toolkit.fluxcd.io/v1"),
        "ArtifactGenerator" => Some("source.extensions.fluxcd.io/v1beta1"),
        _ => None,
    }
}

/// Discovered API resources (plural names) by group/version/kind.
#[derive(Default)]
pub struct KindCache(Mutex<HashMap<String, ApiResource>>);

impl KindCache {
    async fn resolve(
        &self,
        client: &Client,
        gvk: &GroupVersionKind,
    ) -> Result<ApiResource, String> {
        let key = format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind);
        if let Some(found) = self.lock().get(&key) {
            return Ok(found.clone());
        }
        let (resource, _) = kube::discovery::pinned_kind(client, gvk)
            .await
            .map_err(|error| format!("kind {key} is not served by the cluster: {error}"))?;
        let mut cache = self.lock();
        if cache.len() >= MAX_KINDS {
            cache.clear();
        }
        cache.insert(key, resource.clone());
        Ok(resource)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ApiResource>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How the resources are touched.
pub struct Notifier<'a> {
    pub client: &'a Client,
    pub kinds: &'a KindCache,
    pub field_manager: &'a str,
    pub no_cross_namespace_refs: bool,
}

impl Notifier<'_> {
    /// Annotates every resource of `receiver`; returns how many objects were annotated, or the
    /// errors (the other resources are still annotated).
    pub async fn notify_all(&self, receiver: &Receiver) -> Result<usize, Vec<String>> {
        let token = requested_at_now();
        let mut annotated = 0;
        let mut errors = Vec::new();
        for resource in &receiver.spec.resources {
            match self.notify(receiver, resource, &token).await {
                Ok(count) => annotated += count,
                Err(error) => {
                    errors.push(format!("{} '{}': {error}", resource.kind, resource.name))
                }
            }
        }
        if errors.is_empty() {
            Ok(annotated)
        } else {
            Err(errors)
        }
    }

    async fn notify(
        &self,
        receiver: &Receiver,
        resource: &ReceiverResource,
        token: &str,
    ) -> Result<usize, String> {
        let own_namespace = receiver.metadata.namespace.as_deref().unwrap_or_default();
        let namespace = resource.namespace.as_deref().unwrap_or(own_namespace);
        if self.no_cross_namespace_refs && namespace != own_namespace {
            return Err("cross-namespace references are not allowed".to_owned());
        }
        let api_version = match resource.api_version.as_deref() {
            Some(version) => version,
            None => default_api_version(&resource.kind).ok_or_else(|| {
                format!("apiVersion must be specified for kind '{}'", resource.kind)
            })?,
        };
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, &resource.kind);
        let api_resource = self.kinds.resolve(self.client, &gvk).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &api_resource);
        if resource.name != "*" {
            return self.annotate(&api, &resource.name, token).await.map(|()| 1);
        }
        let Some(labels) = &resource.match_labels else {
            return Err("matchLabels field not set when using wildcard '*' as name".to_owned());
        };
        let selector = labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",");
        let objects = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|error| format!("listing by labels '{selector}' failed: {error}"))?;
        for object in &objects.items {
            let name = object.metadata.name.as_deref().unwrap_or_default();
            self.annotate(&api, name, token).await?;
        }
        Ok(objects.items.len())
    }

    async fn annotate(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        token: &str,
    ) -> Result<(), String> {
        let patch = serde_json::json!({
            "metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: token}}
        });
        let params = PatchParams {
            field_manager: Some(self.field_manager.to_owned()),
            ..PatchParams::default()
        };
        api.patch_metadata(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| format!("annotating '{name}' failed: {error}"))
    }
}

/// The current time as Go's `time.Time.String()` writes it in UTC, as Flux's receiver sets it.
pub fn requested_at_now() -> String {
    let now = Timestamp::now();
    let text = now.strftime("%Y-%m-%d %H:%M:%S%.f").to_string();
    format!("{text} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_api_versions_follow_flux() {
        assert_eq!(
            default_api_version("GitRepository"),
            Some("source.toolkit.fluxcd.io/v1")
        );
        assert_eq!(
            default_api_version("ImageRepository"),
            Some("image.toolkit.fluxcd.io/v1")
        );
        assert_eq!(default_api_version("Kustomization"), None);
    }

    #[test]
    fn requested_at_looks_like_go_time_string() {
        let value = requested_at_now();
        assert!(value.ends_with(" +0000 UTC"), "{value}");
        assert_eq!(&value[4..5], "-");
        assert_eq!(&value[10..11], " ");
    }
}
