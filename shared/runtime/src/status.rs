//! Writing an object's status subresource.
//!
//! Status is written with server-side apply on `/status` (forced, with the controller as field
//! manager) rather than a merge patch: fields the controller stops sending are pruned because it
//! owns them, no read-modify-write or resourceVersion conflicts arise between concurrent workers,
//! and `managedFields` shows which controller wrote the status.

use std::fmt::Debug;
use std::time::{Duration, Instant};

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
    #[error(
        "applying the status of {kind} {name} failed: {source}; the apiserver was unavailable for {seconds} s, the reconcile is retried"
    )]
    Unavailable {
        kind: String,
        name: String,
        seconds: u64,
        source: kube::Error,
    },
}

/// Server-side applies `status` to the status subresource of `name`, owned by `field_manager`.
///
/// `api` must be scoped like the object (namespaced for namespaced kinds). Transient failures are
/// retried for up to 20 s. Returns the object as stored after the patch.
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
    let started = Instant::now();
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(stored) => return Ok(stored),
            Err(source) if is_transient(&source) && started.elapsed() < RETRY_FOR => {
                tracing::debug!(name, error = %source, retry_in = ?delay, "status write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
            Err(source) if is_transient(&source) => {
                return Err(StatusError::Unavailable {
                    kind: K::kind(&K::DynamicType::default()).into_owned(),
                    name: name.to_owned(),
                    seconds: RETRY_FOR.as_secs(),
                    source,
                });
            }
            Err(source) => {
                return Err(StatusError::Apply {
                    kind: K::kind(&K::DynamicType::default()).into_owned(),
                    name: name.to_owned(),
                    source,
                });
            }
        }
    }
}

/// How long a status write is retried while the apiserver is unreachable or unavailable: a
/// lost write would leave a status describing what the cluster no longer holds (an apply's
/// inventory and revision). Long enough for an apiserver restart.
const RETRY_FOR: Duration = Duration::from_secs(20);
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(4);

/// A failure that may pass on another attempt: no connection, a 5xx, or 429.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
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
