//! OCIRepository steps: resolve the reference with one manifest HEAD, verify its cosign
//! signature when `spec.verify` asks, stop when nothing changed, otherwise pull the selected
//! layer, extract or copy it into storage and publish it.

use kube::{Resource, ResourceExt};
use sluice_api::meta::condition_type::{ARTIFACT_OUTDATED, FETCH_FAILED, STORAGE_OPERATION_FAILED};
use sluice_api::meta::reason;
use sluice_api::source::{OCILayerOperation, OCIProvider, OCIRepository};
use sluice_api::{FluxObject, SourceObject};
use sluice_artifact::archive::{ExtractOptions, UnsafeEntries, extract_tar_gz};
use sluice_runtime::Outcome;
use sluice_runtime::conditions;
use sluice_secrets::{ProxySettings, RegistryAccess, docker_credentials};

use super::artifact::{Publication, object_dir, publish_artifact};
use super::registry_access::{apply_cert_secret, base_access, secret};
use super::{SourceContext, SourceKind, oci_verify, step};
use crate::ignore::IgnoreRules;
use crate::oci::{OciError, OciRemote, PulledLayer, Repository, ResolvedArtifact};
use crate::status;
use crate::storage::StoredFile;

impl SourceKind for OCIRepository {
    const KIND: &'static str = "OCIRepository";

    async fn run(context: &SourceContext, object: &mut OCIRepository) -> Result<(), Outcome> {
        let verify = object.spec.verification.is_some();
        oci_verify::reset_verification(object, verify);
        unsupported_fields(object)?;
        oci_verify::unsupported_verification(object)?;
        context.check_url(&object.spec.url).await?;
        let (remote, resolved) = resolve(context, object).await?;
        oci_verify::verify_artifact(context, object, &remote, &resolved).await?;
        if !mark_building(object, &resolved) {
            return Ok(());
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
        let copy = selector.operation == Some(OCILayerOperation::Copy);
        let annotations = layer.annotations.clone();
        let stored = store_layer(context, object, layer, copy).await?;
        let publication = Publication {
            stored,
            stored_message: format!("stored artifact for digest '{}'", resolved.revision),
            new_artifact_message: format!(
                "stored artifact with revision '{}' from '{}'",
                resolved.revision,
                sluice_git::display_url(&object.spec.url)
            ),
            revision: resolved.revision,
            metadata: annotations,
            committed_at: None,
        };
        let artifact = publish_artifact(context, object, OCIRepository::KIND, publication).await;
        let spec = object.spec.clone();
        let status = object.status.get_or_insert_with(Default::default);
        status.url = Some(artifact.url);
        status.observed_ignore = spec.ignore;
        status.observed_layer_selector = spec.layer_selector;
        Ok(())
    }
}

fn unsupported_fields(object: &OCIRepository) -> Result<(), Outcome> {
    let spec = &object.spec;
    if spec.provider.is_some_and(|p| p != OCIProvider::Generic) {
        return Err(step::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.provider other than 'generic' is not supported by this source-controller; use spec.secretRef",
        ));
    }
    if spec.service_account_name.is_some() {
        return Err(step::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.serviceAccountName (image pull secrets of a ServiceAccount) is not supported; use spec.secretRef",
        ));
    }
    Ok(())
}

fn fetch_failure(error: &OciError) -> Outcome {
    match error {
        OciError::InvalidUrl(message) => step::stalled(reason::URL_INVALID, message.clone()),
        OciError::Authentication(_) | OciError::Secret(_) => step::failed(
            FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("failed to pull artifact: {error}"),
        ),
        OciError::Pull(_) | OciError::Timeout(_) => step::failed(
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
) -> Result<RegistryAccess, Outcome> {
    let spec = &object.spec;
    let namespace = object.namespace().unwrap_or_default();
    let auth_failure = |error: &dyn std::fmt::Display| {
        step::failed(
            FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("failed to configure authentication options: {error}"),
        )
    };
    let mut access = base_access(spec.insecure, spec.timeout.as_deref());
    if let Some(reference) = &spec.secret_ref {
        let secret = secret(context, &namespace, &reference.name, &auth_failure).await?;
        access.auth =
            docker_credentials(&secret, &repository.registry).map_err(|e| auth_failure(&e))?;
    }
    let cert_secret = spec.cert_secret_ref.as_ref().map(|r| r.name.as_str());
    apply_cert_secret(context, &namespace, cert_secret, &mut access, &auth_failure).await?;
    if let Some(reference) = &spec.proxy_secret_ref {
        let secret = secret(context, &namespace, &reference.name, &auth_failure).await?;
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

/// Resolves the reference to a manifest digest with the object's registry access.
async fn resolve(
    context: &SourceContext,
    object: &OCIRepository,
) -> Result<(OciRemote, ResolvedArtifact), Outcome> {
    let repository = Repository::parse(&object.spec.url).map_err(|e| fetch_failure(&e))?;
    let access = access_for(context, object, &repository).await?;
    let remote = OciRemote::new(repository, access);
    let resolved = remote
        .resolve(object.spec.reference.as_ref())
        .await
        .map_err(|e| fetch_failure(&e))?;
    Ok((remote, resolved))
}

/// Marks a new revision as building; `false` when the stored artifact already has this
/// revision and content settings, so nothing is pulled.
fn mark_building(object: &mut OCIRepository, resolved: &ResolvedArtifact) -> bool {
    let generation = object.meta().generation;
    let same_revision = object
        .artifact()
        .is_some_and(|a| a.has_revision(&resolved.revision));
    if same_revision && !content_config_changed(object) {
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
        return false;
    }
    if !same_revision {
        let message = format!(
            "new revision '{}' for '{}'",
            resolved.revision,
            sluice_git::display_url(&object.spec.url)
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
    true
}

/// Stores the layer as is (`copy`) or extracts it and archives the tree, honouring `spec.ignore`.
async fn store_layer(
    context: &SourceContext,
    object: &OCIRepository,
    layer: PulledLayer,
    copy: bool,
) -> Result<StoredFile, Outcome> {
    let storage = context.storage.clone();
    let target_dir = object_dir(OCIRepository::KIND, object);
    let ignore = object.spec.ignore.clone();
    let media_type = layer.media_type;
    let bytes = layer.bytes;
    let max_size = context.storage.max_artifact_size();
    tokio::task::spawn_blocking(move || {
        if copy {
            return storage
                .store_stream(&mut bytes.as_slice(), &target_dir)
                .map_err(|e| step::storage(reason::ARCHIVE_OPERATION_FAILED, &e));
        }
        let layer_failure = |message: String| {
            step::failed(FETCH_FAILED, reason::OCI_ARTIFACT_LAYER_OPERATION_FAILED, message)
        };
        let unpacked = tempfile::Builder::new()
            .prefix("ocirepository-")
            .tempdir()
            .map_err(|e| layer_failure(format!("creating an extraction directory failed: {e}")))?;
        let options = ExtractOptions {
            max_size: Some(max_size),
            unsafe_entries: UnsafeEntries::Skip,
            ..ExtractOptions::default()
        };
        extract_tar_gz(bytes.as_slice(), unpacked.path(), &options).map_err(|e| {
            layer_failure(format!("failed to extract layer of media type '{media_type}': {e}; the layer must be a tar+gzip archive"))
        })?;
        let rules = IgnoreRules::for_tree(unpacked.path(), ignore.as_deref()).map_err(|e| {
            step::failed(STORAGE_OPERATION_FAILED, reason::ARCHIVE_OPERATION_FAILED, e.to_string())
        })?;
        storage
            .archive_dir(unpacked.path(), &rules, &target_dir)
            .map_err(|e| step::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| step::storage_task(reason::ARCHIVE_OPERATION_FAILED, &e))?
}
