//! Writing an object's status subresource.
//!
//! Status is written with server-side apply on `/status` (forced, with the controller as field
//! manager) rather than a merge patch: fields the controller stops sending are pruned because it
//! owns them, no read-modify-write or resourceVersion conflicts arise between concurrent workers,
//! and `managedFields` shows which controller wrote the status.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Writing status failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "serializing the status of {kind} {name} failed: {source}; the status type must serialize to a JSON object"
    )]
    Serialize {
        kind: String,
        name: String,
        source: serde_json::Error,
    },
    #[error(
        "applying the status of {kind} {name} failed: {source}; check the CRD has a status subresource and RBAC allows patching {kind}/status"
    )]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
}

/// Server-side applies `status` to the status subresource of `name`, owned by `field_manager`.
///
/// `api` must be scoped like the object (namespaced for namespaced kinds). Returns the object as
/// stored after the patch.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    field_manager: &str,
    status: &S,
) -> Result<K, StatusError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
    S: Serialize,
{
    let body = status_apply_body::<K, S>(name, status)?;
    let params = PatchParams::apply(field_manager).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| StatusError::Apply {
            kind: K::kind(&K::DynamicType::default()).into_owned(),
            name: name.to_owned(),
            source,
        })
}

/// Applies `status` to the status of `object`, using its name.
pub async fn apply_status_of<K, S>(
    api: &Api<K>,
    object: &K,
    field_manager: &str,
    status: &S,
) -> Result<K, StatusError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
    S: Serialize,
{
    apply_status(api, &object.name_any(), field_manager, status).await
}

/// The apply configuration: apiVersion, kind, name and the status.
pub fn status_apply_body<K, S>(name: &str, status: &S) -> Result<serde_json::Value, StatusError>
where
    K: Resource,
    K::DynamicType: Default,
    S: Serialize,
{
    let dynamic_type = K::DynamicType::default();
    let status = serde_json::to_value(status).map_err(|source| StatusError::Serialize {
        kind: K::kind(&dynamic_type).into_owned(),
        name: name.to_owned(),
        source,
    })?;
    Ok(json!({
        "apiVersion": K::api_version(&dynamic_type),
        "kind": K::kind(&dynamic_type),
        "metadata": { "name": name },
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    #[test]
    fn apply_body_carries_type_and_name() {
        let body = status_apply_body::<Service, _>("web", &json!({"conditions": []}))
            .expect("serializable");
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "status": {"conditions": []},
            })
        );
    }
}
