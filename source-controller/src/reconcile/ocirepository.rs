//! OCIRepository reconciler: resolve the reference with one manifest HEAD, skip when nothing
//! changed, otherwise pull the selected layer and extract or copy it into storage.

use std::sync::Arc;
use std::time::Duration;

use kube::{Resource, ResourceExt};
use sluice_api::duration::parse_duration;
use sluice_api::meta::condition_type::{
    ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, STORAGE_OPERATION_FAILED,
};
use sluice_api::meta::reason;
use sluice_api::source::{OCILayerOperation, OCIProvider, OCIRepository, OCIRepositoryStatus};
use sluice_api::{FluxObject, SourceObject};
use sluice_artifact::archive::{ExtractOptions, UnsafeEntries, extract_tar_gz};
use sluice_runtime::conditions;
use sluice_runtime::{ObjectEvent, Requeue};
use sluice_secrets::{ProxySettings, RegistryAccess, docker_credentials, read_secret};

use super::gitrepository::digest_suffix;
use super::{SourceContext, SourceError, StepFailure};
use crate::ignore::IgnoreRules;
use crate::oci::{OciError, OciRemote, Repository};
use crate::status;
use crate::storage::Storage;

/// Kind name used in storage paths.
pub const KIND: &str = "OCIRepository";

fn status_of(object: &OCIRepository) -> Option<&OCIRepositoryStatus> {
    object.status.as_ref()
}

/// Reconciles one OCIRepository.
pub async fn reconcile(
    object: Arc<OCIRepository>,
    context: Arc<SourceContext>,
) -> Result<Requeue, SourceError> {
    let mut object = (*object).clone();
    object.status.get_or_insert_with(Default::default);
    super::reconcile_source(&context, object, KIND, status_of, run).await
}

fn unsupported_fields(object: &OCIRepository) -> Result<(), StepFailure> {
    let spec = &object.spec;
    if spec.provider.is_some_and(|p| p != OCIProvider::Generic) {
        return Err(StepFailure::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.provider other than 'generic' is not supported by this source-controller; use spec.secretRef",
        ));
    }
    if spec.service_account_name.is_some() {
        return Err(StepFailure::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.serviceAccountName (image pull secrets of a ServiceAccount) is not supported; use spec.secretRef",
        ));
    }
    if spec.verification.is_some() {
        return Err(StepFailure::stalled(
            "VerifyNotSupported",
            "spec.verify (cosign/notation verification) is not supported by this source-controller; remove spec.verify",
        ));
    }
    Ok(())
}

fn fetch_failure(error: &OciError) -> StepFailure {
    match error {
        OciError::InvalidUrl(message) => StepFailure::stalled(reason::URL_INVALID, message.clone()),
        OciError::Authentication(_) | OciError::Secret(_) => StepFailure::failed(
            FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("failed to pull artifact: {error}"),
        ),
        OciError::Pull(_) | OciError::Timeout(_) => StepFailure::failed(
            FETCH_FAILED,
            reason::OCI_ARTIFACT_PULL_FAILED,
            format!("failed to pull artifact: {error}"),
        ),
    }
}

async fn access_for(
    context: &SourceContext,
    object: &OCIRepository,
    repository: &Repository,
) -> Result<RegistryAccess, StepFailure> {
    let spec = &object.spec;
    let namespace = object.namespace().unwrap_or_default();
    let client = &context.runtime.client;
    let auth_failure = |error: &dyn std::fmt::Display| {
        StepFailure::failed(
            FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("failed to configure authentication options: {error}"),
        )
    };
    let mut access = RegistryAccess {
        insecure: spec.insecure,
        timeout: spec
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(60)),
        ..RegistryAccess::default()
    };
    if let Some(reference) = &spec.secret_ref {
        let secret = read_secret(client, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        access.auth =
            docker_credentials(&secret, &repository.registry).map_err(|e| auth_failure(&e))?;
    }
    if let Some(reference) = &spec.cert_secret_ref {
        let secret = read_secret(client, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        if secret.bytes("tls.crt").is_some() || secret.bytes("tls.key").is_some() {
            return Err(StepFailure::stalled(
                "CertSecretRefClientCertificateNotSupported",
                format!(
                    "spec.certSecretRef '{}' holds tls.crt/tls.key: client certificates are not supported for OCI registries by this source-controller; keep only ca.crt",
                    reference.name
                ),
            ));
        }
        access.ca = secret.bytes("ca.crt").map(<[u8]>::to_vec);
    }
    if let Some(reference) = &spec.proxy_secret_ref {
        let secret = read_secret(client, &namespace, &reference.name)
            .await
            .map_err(|e| auth_failure(&e))?;
        access.proxy = Some(
            ProxySettings::from_secret(&secret)
                .map_err(|e| auth_failure(&e))?
                .url,
        );
    }
    Ok(access)
}

fn content_config_changed(object: &OCIRepository) -> bool {
    object.status.as_ref().is_none_or(|status| {
        status.observed_ignore != object.spec.ignore
            || status.observed_layer_selector != object.spec.layer_selector
    })
}

async fn run(context: &SourceContext, object: &mut OCIRepository) -> Result<(), StepFailure> {
    unsupported_fields(object)?;
    let generation = object.meta().generation;
    let repository = Repository::parse(&object.spec.url).map_err(|e| fetch_failure(&e))?;
    let access = access_for(context, object, &repository).await?;
    let remote = OciRemote::new(repository, access);
    let resolved = remote
        .resolve(object.spec.reference.as_ref())
        .await
        .map_err(|e| fetch_failure(&e))?;
    let current = object.artifact().cloned();
    if current
        .as_ref()
        .is_some_and(|a| a.has_revision(&resolved.revision))
        && !content_config_changed(object)
    {
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
        return Ok(());
    }
    if current
        .as_ref()
        .is_none_or(|a| !a.has_revision(&resolved.revision))
    {
        let message = format!(
            "new revision '{}' for '{}'",
            resolved.revision, object.spec.url
        );
        status::mark_true(
            object.conditions_mut(),
            ARTIFACT_OUTDATED,
            reason::NEW_REVISION,
            &message,
            generation,
        );
        status::mark_progressing(
            object.conditions_mut(),
            &format!("building artifact: {message}"),
            generation,
        );
    }
    let selector = object.spec.layer_selector.clone().unwrap_or_default();
    let layer = remote
        .pull_layer(
            &resolved.digest,
            selector.media_type.as_deref(),
            context.storage.max_artifact_size(),
        )
        .await
        .map_err(|e| fetch_failure(&e))?;
    conditions::remove(object.conditions_mut(), FETCH_FAILED);

    let storage = context.storage.clone();
    let object_dir = Storage::object_dir(
        KIND,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    );
    let target_dir = object_dir.clone();
    let ignore = object.spec.ignore.clone();
    let copy = selector.operation == Some(OCILayerOperation::Copy);
    let media_type = layer.media_type.clone();
    let bytes = layer.bytes;
    let stored = tokio::task::spawn_blocking(move || {
        let layer_failure = |message: String| {
            StepFailure::failed(FETCH_FAILED, reason::OCI_ARTIFACT_LAYER_OPERATION_FAILED, message)
        };
        if copy {
            return storage
                .store_stream(&mut bytes.as_slice(), &target_dir)
                .map_err(|e| StepFailure::storage(reason::ARCHIVE_OPERATION_FAILED, &e));
        }
        let unpacked = tempfile::Builder::new()
            .prefix("ocirepository-")
            .tempdir()
            .map_err(|e| layer_failure(format!("creating an extraction directory failed: {e}")))?;
        let options = ExtractOptions { unsafe_entries: UnsafeEntries::Skip, ..ExtractOptions::default() };
        extract_tar_gz(bytes.as_slice(), unpacked.path(), &options).map_err(|e| {
            layer_failure(format!("failed to extract layer of media type '{media_type}': {e}; the layer must be a tar+gzip archive"))
        })?;
        let rules = IgnoreRules::for_tree(unpacked.path(), ignore.as_deref())
            .map_err(|e| StepFailure::failed(STORAGE_OPERATION_FAILED, reason::ARCHIVE_OPERATION_FAILED, e.to_string()))?;
        storage
            .archive_dir(unpacked.path(), &rules, &target_dir)
            .map_err(|e| StepFailure::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| StepFailure::failed(STORAGE_OPERATION_FAILED, reason::ARCHIVE_OPERATION_FAILED, e.to_string()))??;

    let artifact = super::artifact_for(context, &stored, &resolved.revision, layer.annotations);
    let digest_changed = current.as_ref().is_none_or(|a| a.digest != artifact.digest);
    {
        let spec = object.spec.clone();
        let status = object.status.get_or_insert_with(Default::default);
        status.url = Some(artifact.url.clone());
        status.artifact = Some(artifact.clone());
        status.observed_ignore = spec.ignore;
        status.observed_layer_selector = spec.layer_selector;
    }
    conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
    let message = format!("stored artifact for digest '{}'", resolved.revision);
    status::mark_true(
        object.conditions_mut(),
        ARTIFACT_IN_STORAGE,
        reason::SUCCEEDED,
        &message,
        generation,
    );
    if digest_changed {
        let event = ObjectEvent::info(
            "NewArtifact",
            format!(
                "stored artifact with revision '{}' from '{}'",
                resolved.revision, object.spec.url
            ),
        )
        .with_revision(resolved.revision.clone())
        .with_metadata(digest_suffix(), artifact.digest.clone());
        context.runtime.events.publish(&*object, event).await;
    }
    super::garbage_collect(context, object_dir, Some(artifact.path)).await;
    Ok(())
}
