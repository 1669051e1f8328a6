//! A client for one cluster with a cache of resolved kinds, shared by apply, health and prune.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};

/// A resolved kind: how to address it and whether it is namespaced.
#[derive(Debug, Clone)]
pub struct ResolvedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// A client for one cluster with a kind-resolution cache.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    kinds: Arc<Mutex<HashMap<GroupVersionKind, ResolvedKind>>>,
}

impl Cluster {
    /// A cluster handle with an empty kind cache.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            kinds: Arc::default(),
        }
    }

    /// The same cluster (and kind cache) through another client, e.g. an impersonating one.
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            client,
            kinds: self.kinds.clone(),
        }
    }

    /// Resolves a kind through discovery of its group version, cached.
    pub async fn resolve(&self, gvk: &GroupVersionKind) -> Result<ResolvedKind, kube::Error> {
        if let Some(found) = self
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(gvk)
        {
            return Ok(found.clone());
        }
        let (resource, capabilities) = pinned_kind(&self.client, gvk).await?;
        let resolved = ResolvedKind {
            resource,
            namespaced: matches!(capabilities.scope, Scope::Namespaced),
        };
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(gvk.clone(), resolved.clone());
        Ok(resolved)
    }

    /// Drops cached kinds of `group` so newly installed CRD versions are discovered.
    pub fn forget_group(&self, group: &str) {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|gvk, _| gvk.group != group);
    }

    /// A dynamic API for a resolved kind, scoped to `namespace` when namespaced.
    pub fn api(&self, kind: &ResolvedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(namespace)) => {
                Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
            }
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }
}
