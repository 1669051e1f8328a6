//! HelmRepository steps. Type `default`: fetch `index.yaml`, stop when its digest equals the
//! artifact revision, otherwise store the normalised index (JSON). Type `oci`: a static object
//! that is never reconciled, as in Flux.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use sha2::{Digest as _, Sha256};
use sluice_api::duration::parse_duration;
use sluice_api::meta::condition_type::{ARTIFACT_OUTDATED, FETCH_FAILED};
use sluice_api::meta::{FINALIZER, reason};
use sluice_api::source::{HelmRepository, HelmRepositoryType};
use sluice_api::{FluxObject, SourceObject};
use sluice_runtime::controller::Requeue;
use sluice_runtime::lifecycle::{self, LifecycleError};
use sluice_runtime::{Outcome, conditions};
use sluice_secrets::{RegistryAccess, SecretData, read_secret};

use super::artifact::{Publication, object_dir, publish_artifact};
use super::{SourceContext, SourceKind, SourceReconciler, step};
use crate::helm::http::{HelmHttpClient, HelmHttpError, HelmHttpSettings};
use crate::helm::index::RepositoryIndex;
use crate::status;
use crate::storage::StoredFile;

/// Default of `spec.timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Caps on Helm downloads: `--helm-index-max-size`, `--helm-chart-max-size` and
/// `--helm-chart-file-max-size` (Flux's flags and defaults).
#[derive(Debug, Clone, Copy)]
pub struct HelmLimits {
    pub max_index_size: u64,
    pub max_chart_size: u64,
    pub max_chart_file_size: u64,
}

impl Default for HelmLimits {
    fn default() -> Self {
        Self {
            max_index_size: 50 << 20,
            max_chart_size: 10 << 20,
            max_chart_file_size: 5 << 20,
        }
    }
}

impl SourceKind for HelmRepository {
    const KIND: &'static str = "HelmRepository";

    async fn run(context: &SourceContext, object: &mut HelmRepository) -> Result<(), Outcome> {
        let url = object.spec.url.clone();
        if url.starts_with("oci://") {
            return Err(step::stalled(
                reason::URL_INVALID,
                "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type; set spec.type to 'oci'",
            ));
        }
        let client = repository_client(context, object).await?;
        context.check_url(client.index_url().as_str()).await?;
        let limit = context.helm_limits.max_index_size;
        let bytes = client
            .get(&client.index_url(), limit, "--helm-index-max-size")
            .await
            .map_err(|e| fetch_failure(&e))?;
        let revision = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if object.artifact().is_some_and(|a| a.revision == revision) {
            conditions::remove(object.conditions_mut(), FETCH_FAILED);
            return Ok(());
        }
        let index = RepositoryIndex::parse(&bytes).map_err(|e| {
            step::failed(
                FETCH_FAILED,
                "IndexationFailed",
                format!("failed to load Helm repository from index YAML: {e}"),
            )
        })?;
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        mark_new_revision(object, &revision);
        let stored = store(context, object, index.to_json()).await?;
        let size = stored.size;
        let publication = Publication {
            stored,
            stored_message: format!("stored artifact: revision '{revision}'"),
            new_artifact_message: format!(
                "stored fetched index of size {} from '{url}'",
                human_size(size)
            ),
            revision,
            metadata: Default::default(),
            committed_at: None,
        };
        let artifact = publish_artifact(context, object, HelmRepository::KIND, publication).await;
        object.status.get_or_insert_with(Default::default).url = Some(artifact.url);
        Ok(())
    }
}

fn mark_new_revision(object: &mut HelmRepository, revision: &str) {
    let generation = object.metadata.generation;
    let message = format!("new index revision '{revision}'");
    if object.artifact().is_some() {
        status::mark_true(
            object.conditions_mut(),
            ARTIFACT_OUTDATED,
            reason::NEW_REVISION,
            &message,
            generation,
        );
    }
    status::mark_progressing(
        object.conditions_mut(),
        &format!("building artifact: {message}"),
        generation,
    );
}

/// A repository fetch failure: `FetchFailed=True`, reason `Failed` as in Flux.
pub(crate) fn fetch_failure(error: &HelmHttpError) -> Outcome {
    let message = format!("failed to fetch Helm repository index: {error}");
    match error {
        HelmHttpError::InvalidUrl { .. } => step::stalled(reason::URL_INVALID, message),
        _ => step::failed(FETCH_FAILED, reason::FAILED, message),
    }
}

fn auth_failure(error: &dyn std::fmt::Display) -> Outcome {
    step::failed(
        FETCH_FAILED,
        reason::AUTHENTICATION_FAILED,
        error.to_string(),
    )
}

/// The repository's client: `secretRef` basic auth (and, deprecated, TLS keys), `certSecretRef`
/// TLS (which takes priority), `passCredentials` and `timeout`.
pub(crate) async fn repository_client(
    context: &SourceContext,
    object: &HelmRepository,
) -> Result<HelmHttpClient, Outcome> {
    let spec = &object.spec;
    let namespace = object.namespace().unwrap_or_default();
    let kube = &context.runtime.client;
    let mut settings = HelmHttpSettings {
        timeout: spec
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT),
        pass_credentials: spec.pass_credentials,
        ..HelmHttpSettings::default()
    };
    let mut tls: Option<SecretData> = None;
    if let Some(reference) = &spec.secret_ref {
        let secret = read_secret(kube, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        let username = secret.text("username").map_err(|e| auth_failure(&e))?;
        let password = secret.text("password").map_err(|e| auth_failure(&e))?;
        settings.basic_auth = match (username, password) {
            (Some(username), Some(password)) => Some((username, password)),
            (None, None) => None,
            _ => {
                return Err(auth_failure(&secret.invalid(
                    "'username' and 'password' must be set together for basic auth",
                )));
            }
        };
        if secret.bytes("ca.crt").is_some() || secret.bytes("tls.crt").is_some() {
            tls = Some(secret);
        }
    }
    if let Some(reference) = &spec.cert_secret_ref {
        let secret = read_secret(kube, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        tls = Some(secret);
    }
    if let Some(secret) = tls {
        let mut access = RegistryAccess::default();
        access
            .apply_cert_secret(&secret)
            .map_err(|e| auth_failure(&e))?;
        settings.ca = access.ca;
        settings.client_identity = access.client_identity;
    }
    HelmHttpClient::new(&spec.url, settings).map_err(|e| match e {
        HelmHttpError::InvalidUrl { .. } => step::stalled(
            reason::URL_INVALID,
            format!("invalid Helm repository URL: {e}"),
        ),
        _ => auth_failure(&e),
    })
}

async fn store(
    context: &SourceContext,
    object: &HelmRepository,
    bytes: Vec<u8>,
) -> Result<StoredFile, Outcome> {
    let storage = context.storage.clone();
    let dir = object_dir(HelmRepository::KIND, object);
    tokio::task::spawn_blocking(move || {
        storage
            .store_stream(&mut bytes.as_slice(), &dir)
            .map_err(|e| step::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| step::storage_task(reason::ARCHIVE_OPERATION_FAILED, &e))?
}

/// Sizes as Flux's event messages print them (decimal units, 4 significant digits).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let text = format!("{value:.4}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

/// The HelmRepository controller's reconcile: an `oci` HelmRepository is static (Flux: no
/// finalizer, no status, never requeued); any other goes through the shared lifecycle.
pub async fn reconcile(
    object: Arc<HelmRepository>,
    reconciler: Arc<SourceReconciler<HelmRepository>>,
) -> Result<Requeue, LifecycleError> {
    if object.spec.type_ != Some(HelmRepositoryType::Oci) {
        return lifecycle::reconcile(object, reconciler).await;
    }
    let has_finalizer = object.finalizers().iter().any(|f| f == FINALIZER);
    if object
        .status
        .as_ref()
        .is_none_or(|s| *s == Default::default())
        && !has_finalizer
    {
        return Ok(Requeue::OnChange);
    }
    if object.spec.suspend && object.metadata.deletion_timestamp.is_none() {
        return Ok(Requeue::OnChange);
    }
    let context = reconciler.context();
    let dir = object_dir(HelmRepository::KIND, object.as_ref());
    let storage = context.storage.clone();
    let removed = tokio::task::spawn_blocking(move || storage.remove_object(&dir)).await;
    if let Err(message) = removed
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        return Err(LifecycleError::Failed {
            message: format!("removing the artifacts of an oci HelmRepository failed: {message}"),
            retry_after: None,
        });
    }
    let api: Api<HelmRepository> = Api::namespaced(
        context.runtime.client.clone(),
        &object.namespace().unwrap_or_default(),
    );
    let params = PatchParams::default();
    let failed = |what: &str, e: kube::Error| LifecycleError::Failed {
        message: format!("{what} of an oci HelmRepository failed: {e}"),
        retry_after: None,
    };
    let clear = serde_json::json!({"status": null});
    api.patch_status(&object.name_any(), &params, &Patch::Merge(&clear))
        .await
        .map_err(|e| failed("clearing the status", e))?;
    if let Some(index) = object.finalizers().iter().position(|f| f == FINALIZER) {
        let path = format!("/metadata/finalizers/{index}");
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": path, "value": FINALIZER},
            {"op": "remove", "path": path}
        ]))
        .map_err(|e| LifecycleError::Failed {
            message: format!("building the finalizer patch failed: {e}"),
            retry_after: None,
        })?;
        api.patch(&object.name_any(), &params, &Patch::<()>::Json(patch))
            .await
            .map_err(|e| failed("removing the finalizer", e))?;
    }
    Ok(Requeue::OnChange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_flux() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(2_500_000), "2.5MB");
    }
}
