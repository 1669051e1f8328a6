//! GitRepository steps: resolve the ref with one round trip, stop when nothing changed,
//! otherwise shallow-checkout, verify, copy includes, archive and publish the artifact.

use std::path::{Component, Path, PathBuf};

use kube::{Api, Resource, ResourceExt};
use sluice_api::meta::condition_type::{
    ARTIFACT_OUTDATED, FETCH_FAILED, INCLUDE_UNAVAILABLE, STORAGE_OPERATION_FAILED,
};
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::{GitProvider, GitRepository};
use sluice_api::{FluxObject, SourceObject};
use sluice_git::{CheckedOut, CheckoutOptions, GitError, GitRemote, RefSelector};
use sluice_runtime::Outcome;
use sluice_runtime::conditions;
use sluice_runtime::events::ObjectEvent;

use super::artifact::{Publication, object_dir, publish_artifact};
use super::git_verify::{clear_verification, requires_verification, verify_signature};
use super::{SourceContext, SourceKind, step};
use crate::ignore::IgnoreRules;
use crate::status;
use crate::storage::StoredFile;

impl SourceKind for GitRepository {
    const KIND: &'static str = "GitRepository";

    async fn run(context: &SourceContext, object: &mut GitRepository) -> Result<(), Outcome> {
        unsupported_fields(object)?;
        context.check_url(&object.spec.url).await?;
        clear_verification(object);
        let included = resolve_includes(context, object).await?;
        let Some(checkout) = fetch(context, object, &included).await? else {
            return Ok(());
        };
        copy_includes(context, object, &checkout.dir, &included).await?;
        let stored = archive(context, object, checkout.dir.clone()).await?;
        let revision = checkout.checked_out.revision.clone();
        let publication = Publication {
            stored,
            stored_message: format!("stored artifact for revision '{revision}'"),
            new_artifact_message: format!(
                "stored artifact for commit '{}'",
                checkout.checked_out.subject
            ),
            revision,
            metadata: Default::default(),
            committed_at: checkout.checked_out.committed_at,
        };
        drop(checkout);
        publish_artifact(context, object, GitRepository::KIND, publication).await;
        let spec = object.spec.clone();
        let status = object.status.get_or_insert_with(Default::default);
        status.included_artifacts = included;
        status.observed_ignore = spec.ignore;
        status.observed_recurse_submodules = spec.recurse_submodules;
        status.observed_include = spec.include;
        status.observed_sparse_checkout = spec.sparse_checkout;
        Ok(())
    }
}

/// A checked-out commit in a temporary directory, removed when dropped.
struct Checkout {
    _workdir: tempfile::TempDir,
    dir: PathBuf,
    checked_out: CheckedOut,
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

/// Spec settings this controller cannot honour stall the object, naming the field.
fn unsupported_fields(object: &GitRepository) -> Result<(), Outcome> {
    let spec = &object.spec;
    let url = spec.url.as_str();
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ssh://")) {
        return Err(step::stalled(
            reason::URL_INVALID,
            format!(
                "spec.url '{}' has an unsupported scheme; use http://, https:// or ssh://",
                sluice_git::display_url(url)
            ),
        ));
    }
    if let Some(provider) = spec.provider.filter(|p| *p != GitProvider::Generic) {
        return Err(step::stalled(
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
        return Err(step::stalled(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.serviceAccountName (workload identity) is not supported by this source-controller; use spec.secretRef",
        ));
    }
    Ok(())
}

fn fetch_failure(error: &GitError) -> Outcome {
    let reason = match error {
        GitError::Authentication(_) | GitError::Secret(_) => reason::AUTHENTICATION_FAILED,
        GitError::EmptyRepository(_) => reason::EMPTY_GIT_REPOSITORY,
        GitError::Operation(_) | GitError::Timeout(_) => reason::GIT_OPERATION_FAILED,
    };
    step::failed(
        FETCH_FAILED,
        reason,
        format!("failed to checkout and determine revision: {error}"),
    )
}

async fn remote_for(context: &SourceContext, object: &GitRepository) -> Result<GitRemote, Outcome> {
    GitRemote::for_repository(&context.runtime.client, object)
        .await
        .map_err(|error| {
            step::failed(
                FETCH_FAILED,
                reason::AUTHENTICATION_FAILED,
                format!("failed to configure authentication options: {error}"),
            )
        })
}

async fn resolve_includes(
    context: &SourceContext,
    object: &mut GitRepository,
) -> Result<Vec<Artifact>, Outcome> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(context.runtime.client.clone(), &namespace);
    let mut artifacts = Vec::new();
    for include in &object.spec.include {
        let name = &include.repository.name;
        let included = api.get_opt(name).await.map_err(|e| {
            step::waiting(
                INCLUDE_UNAVAILABLE,
                reason::NOT_FOUND,
                format!("could not get resource for include '{name}': {e}"),
            )
        })?;
        let Some(included) = included else {
            return Err(step::waiting(
                INCLUDE_UNAVAILABLE,
                reason::NOT_FOUND,
                format!(
                    "could not get resource for include '{name}': not found; create GitRepository '{namespace}/{name}'"
                ),
            ));
        };
        let Some(artifact) = included.artifact().cloned() else {
            return Err(step::waiting(
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

/// Resolves the ref; `None` when the stored artifact already has this revision and content
/// settings, otherwise the verified checkout of the new commit.
async fn fetch(
    context: &SourceContext,
    object: &mut GitRepository,
    included: &[Artifact],
) -> Result<Option<Checkout>, Outcome> {
    let remote = remote_for(context, object).await?;
    let selector = RefSelector::from_spec(object.spec.reference.as_ref());
    let config_changed = content_config_changed(object, included);
    let current = object.artifact().cloned();
    // Without an artifact to compare with, or with new content settings, the commit is built
    // whatever it is: fetch the ref straight away, without listing the remote's refs first.
    let resolved = match &current {
        Some(artifact) if !config_changed => {
            let resolved = remote
                .resolve(&selector)
                .await
                .map_err(|e| fetch_failure(&e))?;
            if let Some(commit) = &resolved.commit
                && artifact.has_revision(&resolved.revision(commit))
            {
                conditions::remove(object.conditions_mut(), FETCH_FAILED);
                conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
                let message = format!(
                    "no changes since last reconciliation: observed revision '{}'",
                    artifact.revision
                );
                let event = ObjectEvent::trace(reason::GIT_OPERATION_SUCCEEDED, message);
                context.runtime.events.publish(&*object, event).await;
                return Ok(None);
            }
            Some(resolved)
        }
        _ => None,
    };
    let workdir = tempfile::Builder::new()
        .prefix("gitrepository-")
        .tempdir()
        .map_err(|e| {
            step::failed(
                FETCH_FAILED,
                reason::GIT_OPERATION_FAILED,
                format!("creating a checkout directory failed: {e}"),
            )
        })?;
    let dir = workdir.path().join("checkout");
    let options = CheckoutOptions {
        sparse: object.spec.sparse_checkout.clone(),
        submodules: object.spec.recurse_submodules,
        // Signatures are verified against the commit and tag objects in `.git`.
        keep_git_dir: object.spec.verification.is_some(),
    };
    let checked_out = match &resolved {
        Some(resolved) => remote.checkout(resolved, &dir, &options).await,
        None => remote.checkout_unresolved(&selector, &dir, &options).await,
    }
    .map_err(|e| fetch_failure(&e))?;
    conditions::remove(object.conditions_mut(), FETCH_FAILED);
    if let Some(verification) = object.spec.verification.clone() {
        verify_signature(context, object, &verification, &dir, &checked_out).await?;
    }
    mark_building(
        object,
        current.as_ref(),
        &checked_out.revision,
        config_changed,
    );
    Ok(Some(Checkout {
        _workdir: workdir,
        dir,
        checked_out,
    }))
}

/// Marks the artifact outdated (new revision) or the content settings changed, as building.
fn mark_building(
    object: &mut GitRepository,
    current: Option<&Artifact>,
    revision: &str,
    config_changed: bool,
) {
    let generation = object.meta().generation;
    if current.is_none_or(|a| !a.has_revision(revision)) {
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
}

/// Copies each included artifact (or its `fromPath`) to its `toPath` in the checkout, never
/// through a symbolic link the repository committed.
async fn copy_includes(
    context: &SourceContext,
    object: &GitRepository,
    checkout_dir: &Path,
    included: &[Artifact],
) -> Result<(), Outcome> {
    for (include, artifact) in object.spec.include.iter().zip(included) {
        let name = &include.repository.name;
        let to_path = include.to_path.clone().unwrap_or_else(|| name.clone());
        let from_path = include.from_path.clone();
        if !safe_relative(&to_path) || from_path.as_deref().is_some_and(|p| !safe_relative(p)) {
            return Err(step::stalled(
                reason::INVALID_PATH,
                format!(
                    "include '{name}' has an invalid fromPath or toPath; use relative paths without '..'"
                ),
            ));
        }
        let storage = context.storage.clone();
        let root = checkout_dir.to_path_buf();
        let path = artifact.path.clone();
        tokio::task::spawn_blocking(move || {
            storage.extract_within(&path, from_path.as_deref(), &root, &to_path)
        })
        .await
        .map_err(|e| step::storage_task("CopyFailure", &e))?
        .map_err(|e| {
            step::failed(
                STORAGE_OPERATION_FAILED,
                "CopyFailure",
                format!("failed to copy artifact of include '{name}': {e}"),
            )
        })?;
    }
    Ok(())
}

/// Archives the checkout, honouring `.sourceignore` and `spec.ignore`, into the object's storage.
async fn archive(
    context: &SourceContext,
    object: &GitRepository,
    checkout_dir: PathBuf,
) -> Result<StoredFile, Outcome> {
    let storage = context.storage.clone();
    let ignore = object.spec.ignore.clone();
    let archive_dir = object_dir(GitRepository::KIND, object);
    tokio::task::spawn_blocking(move || {
        let rules = IgnoreRules::for_tree(&checkout_dir, ignore.as_deref()).map_err(|e| {
            step::failed(
                STORAGE_OPERATION_FAILED,
                reason::ARCHIVE_OPERATION_FAILED,
                e.to_string(),
            )
        })?;
        storage
            .archive_dir(&checkout_dir, &rules, &archive_dir)
            .map_err(|e| step::storage(reason::ARCHIVE_OPERATION_FAILED, &e))
    })
    .await
    .map_err(|e| step::storage_task(reason::ARCHIVE_OPERATION_FAILED, &e))?
}
