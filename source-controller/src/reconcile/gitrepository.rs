//! GitRepository reconciler: resolve the ref with one round trip, skip when nothing changed,
//! otherwise shallow-checkout, add includes, archive and publish the artifact.

use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use kube::{Api, Resource, ResourceExt};
use sluice_api::duration::parse_duration;
use sluice_api::meta::condition_type::{
    ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, INCLUDE_UNAVAILABLE, SOURCE_VERIFIED,
};
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::{
    DIGEST_EVENT_METADATA_KEY, GitProvider, GitRepository, GitRepositoryStatus,
    GitRepositoryVerification, GitVerificationMode,
};
use sluice_api::{FluxObject, SourceObject};
use sluice_git::{CheckedOut, GitCredentials, GitError, GitRemote, RefSelector};
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_runtime::{ObjectEvent, Requeue};
use sluice_secrets::{ProxySettings, read_secret};

use super::{SourceContext, SourceError, StepFailure};
use crate::ignore::IgnoreRules;
use crate::status;
use crate::storage::Storage;
use crate::verify::{TrustedKeys, Verifier, VerifyError};

/// Lowercase kind used in storage paths.
pub const KIND: &str = "GitRepository";

fn status_of(object: &GitRepository) -> Option<&GitRepositoryStatus> {
    object.status.as_ref()
}

/// Reconciles one GitRepository.
pub async fn reconcile(
    object: Arc<GitRepository>,
    context: Arc<SourceContext>,
) -> Result<Requeue, SourceError> {
    let mut object = (*object).clone();
    object.status.get_or_insert_with(Default::default);
    super::reconcile_source(&context, object, KIND, status_of, run).await
}

/// The spec fields that shape the artifact's content besides the revision.
fn content_config_changed(object: &GitRepository, included: &[Artifact]) -> bool {
    let spec = &object.spec;
    let Some(status) = object.status.as_ref() else {
        return true;
    };
    let same_includes = status.included_artifacts.len() == included.len()
        && status
            .included_artifacts
            .iter()
            .zip(included)
            .all(|(a, b)| a.revision == b.revision && a.digest == b.digest);
    status.observed_ignore != spec.ignore
        || status.observed_recurse_submodules != spec.recurse_submodules
        || status.observed_include != spec.include
        || status.observed_sparse_checkout != spec.sparse_checkout
        || !same_includes
        || requires_verification(object)
}

/// The effective mode: unset and the legacy `head` mean `HEAD`.
fn verification_mode(verification: &GitRepositoryVerification) -> GitVerificationMode {
    match verification.mode {
        None | Some(GitVerificationMode::LegacyHead) => GitVerificationMode::Head,
        Some(mode) => mode,
    }
}

fn verifies_tag(mode: GitVerificationMode) -> bool {
    matches!(
        mode,
        GitVerificationMode::Tag | GitVerificationMode::TagAndHead
    )
}

fn verifies_head(mode: GitVerificationMode) -> bool {
    !matches!(mode, GitVerificationMode::Tag)
}

/// Flux's `requiresVerification`: never verified, or the mode now covers an object it did not.
fn requires_verification(object: &GitRepository) -> bool {
    let Some(verification) = &object.spec.verification else {
        return false;
    };
    let mode = verification_mode(verification);
    match object
        .status
        .as_ref()
        .and_then(|s| s.source_verification_mode)
    {
        None => true,
        Some(observed) => {
            (verifies_head(mode) && !verifies_head(observed))
                || (verifies_tag(mode) && !verifies_tag(observed))
        }
    }
}

/// Spec settings this controller cannot honour stall the object, naming the field.
fn unsupported_fields(object: &GitRepository) -> Result<(), StepFailure> {
    let spec = &object.spec;
    let url = spec.url.as_str();
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ssh://")) {
        return Err(StepFailure::stalled(
            reason::URL_INVALID,
            format!("spec.url '{url}' has an unsupported scheme; use http://, https:// or ssh://"),
        ));
    }
    if let Some(provider) = spec.provider.filter(|p| *p != GitProvider::Generic) {
        return Err(StepFailure::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            format!(
                "spec.provider '{}' is not supported by this source-controller; use 'generic' with spec.secretRef",
                serde_json::to_value(provider)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        ));
    }
    if spec.service_account_name.is_some() {
        return Err(StepFailure::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.serviceAccountName (workload identity) is not supported by this source-controller; use spec.secretRef",
        ));
    }
    Ok(())
}

fn fetch_failure(error: &GitError) -> StepFailure {
    let reason = match error {
        GitError::Authentication(_) | GitError::Secret(_) => reason::AUTHENTICATION_FAILED,
        GitError::EmptyRepository(_) => reason::EMPTY_GIT_REPOSITORY,
        GitError::Operation(_) | GitError::Timeout(_) => reason::GIT_OPERATION_FAILED,
    };
    StepFailure::failed(
        FETCH_FAILED,
        reason,
        format!("failed to checkout and determine revision: {error}"),
    )
}

async fn remote_for(
    context: &SourceContext,
    object: &GitRepository,
) -> Result<GitRemote, StepFailure> {
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
    let credentials = match &spec.secret_ref {
        Some(reference) => {
            let secret = read_secret(client, &namespace, &reference.name)
                .await
                .map_err(|e| auth_failure(&e))?;
            GitCredentials::from_secret(&secret, spec.url.starts_with("ssh://"))
                .map_err(|e| auth_failure(&e))?
        }
        None => GitCredentials::default(),
    };
    let proxy = match &spec.proxy_secret_ref {
        Some(reference) => {
            let secret = read_secret(client, &namespace, &reference.name)
                .await
                .map_err(|e| auth_failure(&e))?;
            Some(ProxySettings::from_secret(&secret).map_err(|e| auth_failure(&e))?)
        }
        None => None,
    };
    let timeout = spec
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(Duration::from_secs(60));
    Ok(GitRemote {
        url: spec.url.clone(),
        credentials,
        proxy,
        timeout,
    })
}

/// Records `SourceVerified=False` and returns the failure that ends the reconcile.
fn unverified(object: &mut GitRepository, reason: &str, message: String) -> StepFailure {
    let generation = object.meta().generation;
    conditions::set(
        object.conditions_mut(),
        SOURCE_VERIFIED,
        ConditionStatus::False,
        reason,
        message.clone(),
        generation,
    );
    if reason == reason::INVALID_VERIFICATION_MODE {
        return StepFailure::stalled(reason, message);
    }
    StepFailure::recorded(reason, message)
}

/// Flux's `verifySignature`: checks the tag and/or HEAD signature against the trusted keys of
/// `spec.verify.secretRef` and records `SourceVerified` and `status.sourceVerificationMode`.
async fn verify_signature(
    context: &SourceContext,
    object: &mut GitRepository,
    verification: &GitRepositoryVerification,
    checkout_dir: &Path,
    checked_out: &CheckedOut,
) -> Result<(), StepFailure> {
    let namespace = object.namespace().unwrap_or_default();
    let secret_name = &verification.secret_ref.name;
    let secret = match read_secret(&context.runtime.client, &namespace, secret_name).await {
        Ok(secret) => secret,
        Err(error) => {
            let message = format!("PGP public keys secret error: {error}");
            return Err(unverified(object, reason::VERIFICATION_ERROR, message));
        }
    };
    let mode = verification_mode(verification);
    let commit = &checked_out.commit;
    let commit_reason = reason::INVALID_COMMIT_SIGNATURE;
    let verifier = match TrustedKeys::from_secret(&secret) {
        Ok(keys) => Verifier::new(keys).await,
        Err(error) => Err(error),
    };
    let verifier = match verifier {
        Ok(verifier) => verifier,
        Err(error) => {
            let (reason, object_name) = match (verifies_tag(mode), &checked_out.tag) {
                (true, Some(tag)) => (reason::INVALID_TAG_SIGNATURE, format!("tag '{}'", tag.name)),
                _ => (commit_reason, format!("commit '{commit}'")),
            };
            let reason = match error {
                VerifyError::Unavailable(_) => reason::VERIFICATION_ERROR,
                _ => reason,
            };
            let message = format!("signature verification of {object_name} failed: {error}");
            return Err(unverified(object, reason, message));
        }
    };
    let mut message = String::from("verified signature of");
    if verifies_tag(mode) {
        let Some(tag) = &checked_out.tag else {
            let message =
                "cannot verify tag object's signature if a tag reference is not specified"
                    .to_owned();
            return Err(unverified(
                object,
                reason::INVALID_VERIFICATION_MODE,
                message,
            ));
        };
        let Some(tag_object) = &tag.object else {
            let message = format!(
                "cannot verify signature of tag '{}' since it is not signed",
                tag.name
            );
            return Err(unverified(object, "InvalidGitObject", message));
        };
        let tag_display = format!("{}@{tag_object}", tag.name);
        match verifier.verify_tag(checkout_dir, tag_object).await {
            Ok(key) => message.push_str(&format!("\n\t- tag '{tag_display}' with key '{key}'")),
            Err(error) => {
                let reason = match error {
                    VerifyError::Unsigned(_) => "InvalidGitObject",
                    VerifyError::Invalid(_) => reason::INVALID_TAG_SIGNATURE,
                    VerifyError::Unavailable(_) => reason::VERIFICATION_ERROR,
                };
                let message = match error {
                    VerifyError::Unsigned(_) => format!(
                        "cannot verify signature of tag '{tag_display}' since it is not signed"
                    ),
                    error => {
                        format!("signature verification of tag '{tag_display}' failed: {error}")
                    }
                };
                return Err(unverified(object, reason, message));
            }
        }
    }
    if verifies_head(mode) {
        match verifier.verify_commit(checkout_dir, commit).await {
            Ok(key) => message.push_str(&format!("\n\t- commit '{commit}' with key '{key}'")),
            Err(error) => {
                let reason = match error {
                    VerifyError::Unavailable(_) => reason::VERIFICATION_ERROR,
                    _ => commit_reason,
                };
                let message =
                    format!("signature verification of commit '{commit}' failed: {error}");
                return Err(unverified(object, reason, message));
            }
        }
    }
    drop(verifier);
    let generation = object.meta().generation;
    object
        .status
        .get_or_insert_with(Default::default)
        .source_verification_mode = Some(mode);
    status::mark_true(
        object.conditions_mut(),
        SOURCE_VERIFIED,
        reason::SUCCEEDED,
        &message,
        generation,
    );
    context
        .runtime
        .events
        .publish(&*object, ObjectEvent::trace(reason::SUCCEEDED, message))
        .await;
    Ok(())
}

/// Without `spec.verify`, drops the verification observations, as Flux does.
fn clear_verification(object: &mut GitRepository) {
    if object.spec.verification.is_none() {
        if let Some(status) = object.status.as_mut() {
            status.source_verification_mode = None;
        }
        conditions::remove(object.conditions_mut(), SOURCE_VERIFIED);
    }
}

async fn resolve_includes(
    context: &SourceContext,
    object: &mut GitRepository,
) -> Result<Vec<Artifact>, StepFailure> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(context.runtime.client.clone(), &namespace);
    let mut artifacts = Vec::new();
    for include in &object.spec.include {
        let name = &include.repository.name;
        let included = api.get_opt(name).await.map_err(|e| {
            StepFailure::waiting(
                INCLUDE_UNAVAILABLE,
                reason::NOT_FOUND,
                format!("could not get resource for include '{name}': {e}"),
            )
        })?;
        let Some(included) = included else {
            return Err(StepFailure::waiting(
                INCLUDE_UNAVAILABLE,
                reason::NOT_FOUND,
                format!(
                    "could not get resource for include '{name}': not found; create GitRepository '{namespace}/{name}'"
                ),
            ));
        };
        let Some(artifact) = included.artifact().cloned() else {
            return Err(StepFailure::waiting(
                INCLUDE_UNAVAILABLE,
                reason::NO_ARTIFACT,
                format!(
                    "no artifact available for include '{name}'; waiting for it to become ready"
                ),
            ));
        };
        artifacts.push(artifact);
    }
    conditions::remove(object.conditions_mut(), INCLUDE_UNAVAILABLE);
    Ok(artifacts)
}

fn safe_relative(path: &str) -> bool {
    Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

async fn run(context: &SourceContext, object: &mut GitRepository) -> Result<(), StepFailure> {
    unsupported_fields(object)?;
    clear_verification(object);
    let generation = object.meta().generation;
    let included = resolve_includes(context, object).await?;
    let remote = remote_for(context, object).await?;
    let selector = RefSelector::from_spec(object.spec.reference.as_ref());
    let resolved = remote
        .resolve(&selector)
        .await
        .map_err(|e| fetch_failure(&e))?;
    let config_changed = content_config_changed(object, &included);
    let current = object.artifact().cloned();
    if let (Some(commit), Some(artifact)) = (&resolved.commit, &current)
        && artifact.has_revision(&resolved.revision(commit))
        && !config_changed
    {
        conditions::remove(object.conditions_mut(), FETCH_FAILED);
        conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
        tracing::debug!(
            namespace = %object.namespace().unwrap_or_default(),
            name = %object.name_any(),
            revision = %artifact.revision,
            "no changes since last reconciliation"
        );
        return Ok(());
    }

    let workdir = tempfile::Builder::new()
        .prefix("gitrepository-")
        .tempdir()
        .map_err(|e| {
            StepFailure::failed(
                FETCH_FAILED,
                reason::GIT_OPERATION_FAILED,
                format!("creating a checkout directory failed: {e}"),
            )
        })?;
    let checkout_dir = workdir.path().join("checkout");
    let checked_out = remote
        .checkout(
            &resolved,
            &checkout_dir,
            &object.spec.sparse_checkout,
            object.spec.recurse_submodules,
        )
        .await
        .map_err(|e| fetch_failure(&e))?;
    conditions::remove(object.conditions_mut(), FETCH_FAILED);
    if let Some(verification) = object.spec.verification.clone() {
        verify_signature(context, object, &verification, &checkout_dir, &checked_out).await?;
    }
    let revision = checked_out.revision.clone();
    if current.as_ref().is_none_or(|a| !a.has_revision(&revision)) {
        let message = format!("new upstream revision '{revision}'");
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
    } else if config_changed {
        status::mark_progressing(
            object.conditions_mut(),
            "building artifact: content configuration changed",
            generation,
        );
    }

    for (include, artifact) in object.spec.include.iter().zip(&included) {
        let to_path = include
            .to_path
            .clone()
            .unwrap_or_else(|| include.repository.name.clone());
        let from_path = include.from_path.clone();
        if !safe_relative(&to_path) || from_path.as_deref().is_some_and(|p| !safe_relative(p)) {
            return Err(StepFailure::stalled(
                reason::INVALID_PATH,
                format!(
                    "include '{}' has an invalid fromPath or toPath; use relative paths without '..'",
                    include.repository.name
                ),
            ));
        }
        let storage = context.storage.clone();
        let root = checkout_dir.clone();
        let path = artifact.path.clone();
        tokio::task::spawn_blocking(move || {
            storage.extract_within(&path, from_path.as_deref(), &root, &to_path)
        })
        .await
        .map_err(|e| {
            StepFailure::failed(
                sluice_api::meta::condition_type::STORAGE_OPERATION_FAILED,
                "CopyFailure",
                e.to_string(),
            )
        })?
        .map_err(|e| {
            StepFailure::failed(
                sluice_api::meta::condition_type::STORAGE_OPERATION_FAILED,
                "CopyFailure",
                format!(
                    "failed to copy artifact of include '{}': {e}",
                    include.repository.name
                ),
            )
        })?;
    }

    let storage = context.storage.clone();
    let ignore = object.spec.ignore.clone();
    let object_dir = Storage::object_dir(
        KIND,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    );
    let archive_dir = object_dir.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let rules = IgnoreRules::for_tree(&checkout_dir, ignore.as_deref()).map_err(|e| {
            StepFailure::failed(
                sluice_api::meta::condition_type::STORAGE_OPERATION_FAILED,
                reason::ARCHIVE_OPERATION_FAILED,
                e.to_string(),
            )
        })?;
        storage
            .archive_dir(&checkout_dir, &rules, &archive_dir)
            .map_err(|e| StepFailure::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| {
        StepFailure::failed(
            sluice_api::meta::condition_type::STORAGE_OPERATION_FAILED,
            reason::ARCHIVE_OPERATION_FAILED,
            e.to_string(),
        )
    })??;
    drop(workdir);

    let artifact = super::artifact_for(context, &stored, &revision, Default::default());
    let digest_changed = current.as_ref().is_none_or(|a| a.digest != artifact.digest);
    let message = format!("stored artifact for revision '{revision}'");
    {
        let spec = object.spec.clone();
        let status = object.status.get_or_insert_with(Default::default);
        status.artifact = Some(artifact.clone());
        status.included_artifacts = included;
        status.observed_ignore = spec.ignore;
        status.observed_recurse_submodules = spec.recurse_submodules;
        status.observed_include = spec.include;
        status.observed_sparse_checkout = spec.sparse_checkout;
    }
    conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
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
            format!("stored artifact for commit '{}'", checked_out.subject),
        )
        .with_revision(revision.clone())
        .with_metadata(digest_suffix(), artifact.digest.clone());
        context.runtime.events.publish(&*object, event).await;
    } else {
        context
            .runtime
            .events
            .publish(
                &*object,
                ObjectEvent::trace(
                    reason::ARTIFACT_UP_TO_DATE,
                    format!("artifact up-to-date with remote revision: '{revision}'"),
                ),
            )
            .await;
    }
    super::garbage_collect(context, object_dir, Some(artifact.path)).await;
    Ok(())
}

/// The metadata key suffix of `source.toolkit.fluxcd.io/digest` (the sink adds the group).
pub fn digest_suffix() -> &'static str {
    DIGEST_EVENT_METADATA_KEY
        .rsplit('/')
        .next()
        .unwrap_or(DIGEST_EVENT_METADATA_KEY)
}
