//! Adding and releasing Flux's finalizer with JSON patches that touch only the finalizer list.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use sluice_api::meta::FINALIZER;

/// Updating the finalizers failed.
#[derive(Debug, thiserror::Error)]
pub enum FinalizerError {
    #[error(
        "updating the finalizers of {kind} {name} failed: {source}; retrying (check RBAC allows patching {kind})"
    )]
    Patch {
        kind: String,
        name: String,
        source: kube::Error,
    },
}

/// Adds [`FINALIZER`] to `object` (and to the local copy), as `field_manager`.
pub async fn add<K>(api: &Api<K>, object: &mut K, field_manager: &str) -> Result<(), FinalizerError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = if object.meta().finalizers.is_none() {
        json!([{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
    } else {
        json!([{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}])
    };
    send(api, object, patch, field_manager).await?;
    object
        .meta_mut()
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(FINALIZER.to_owned());
    Ok(())
}

/// Removes [`FINALIZER`] from `object`, testing its position first so a concurrent change to
/// the list makes the patch fail (and retry) instead of removing another finalizer.
pub async fn remove<K>(api: &Api<K>, object: &K, field_manager: &str) -> Result<(), FinalizerError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let Some(index) = object.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let patch = json!([
        {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{index}")}
    ]);
    send(api, object, patch, field_manager).await
}

async fn send<K>(
    api: &Api<K>,
    object: &K,
    patch: serde_json::Value,
    field_manager: &str,
) -> Result<(), FinalizerError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = object.name_any();
    let failed = |source| FinalizerError::Patch {
        kind: K::kind(&()).into_owned(),
        name: name.clone(),
        source,
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|error| failed(kube::Error::SerdeError(error)))?;
    let params = PatchParams {
        field_manager: Some(field_manager.to_owned()),
        ..PatchParams::default()
    };
    match api.patch(&name, &params, &Patch::Json::<()>(patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
        Err(source) => Err(failed(source)),
    }
}
