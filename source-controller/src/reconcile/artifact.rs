//! The artifact steps every source kind shares: check the stored artifact, publish a new one,
//! and garbage collect superseded files.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use sluice_api::SourceObject;
use sluice_api::meta::condition_type::{ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED};
use sluice_api::meta::{Artifact, reason};
use sluice_api::source::DIGEST_EVENT_METADATA_KEY;
use sluice_runtime::conditions;
use sluice_runtime::{ObjectEvent, Outcome};

use super::{SourceContext, step};
use crate::status;
use crate::storage::{Storage, StorageError, StoredFile};

/// A newly stored artifact and how to announce it.
pub struct Publication {
    pub stored: StoredFile,
    pub revision: String,
    pub metadata: BTreeMap<String, String>,
    /// Message of `ArtifactInStorage` (and so of `Ready`).
    pub stored_message: String,
    /// Message of the `NewArtifact` event when the digest changed.
    pub new_artifact_message: String,
    /// Commit time (Unix seconds) announced in the `NewArtifact` event as `<group>/commit_time`,
    /// for notification-controller's DORA lead time.
    pub committed_at: Option<i64>,
}

/// Event metadata key suffix of the commit time (RFC 3339).
pub const COMMIT_TIME_METADATA: &str = "commit_time";

/// The storage directory of `object`.
pub fn object_dir<K: SourceObject>(kind: &str, object: &K) -> String {
    Storage::object_dir(
        kind,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    )
}

/// Verifies the stored artifact, refreshes its URL and garbage collects superseded files.
/// A missing or corrupted file clears `status.artifact` so the steps build a new one.
pub async fn reconcile_storage<K: SourceObject>(
    context: &SourceContext,
    object: &mut K,
    kind: &str,
) -> Result<(), Outcome> {
    let generation = object.meta().generation;
    let Some(artifact) = object.artifact().cloned() else {
        conditions::remove(object.conditions_mut(), ARTIFACT_IN_STORAGE);
        return Ok(());
    };
    let storage = context.storage.clone();
    let (path, digest) = (artifact.path.clone(), artifact.digest.clone());
    let verified = tokio::task::spawn_blocking(move || {
        let exists = storage.resolve(&path).map(|p| p.is_file()).unwrap_or(false);
        let valid = storage.verify(&path, &digest)?;
        if exists && !valid {
            storage.remove(&path)?;
        }
        Ok::<_, StorageError>((exists, valid))
    })
    .await
    .map_err(|error| step::storage_task(reason::STAT_OPERATION_FAILED, &error))?
    .map_err(|error| step::storage(reason::STAT_OPERATION_FAILED, &error))?;
    match verified {
        (_, true) => {
            let url = context.storage.url_for(&artifact.path);
            if let Some(stored) = object.artifact_mut().as_mut() {
                stored.url = url;
            }
            let message = format!("stored artifact for revision '{}'", artifact.revision);
            status::mark_true(
                object.conditions_mut(),
                ARTIFACT_IN_STORAGE,
                reason::SUCCEEDED,
                &message,
                generation,
            );
        }
        (exists, false) => {
            if exists {
                let message = format!(
                    "failed to verify artifact: digest mismatch for '{}'; removed it and building a new one",
                    artifact.path
                );
                let event = ObjectEvent::error("ArtifactVerificationFailed", message);
                context.runtime.events.publish(&*object, event).await;
            }
            *object.artifact_mut() = None;
            conditions::remove(object.conditions_mut(), ARTIFACT_IN_STORAGE);
            status::mark_progressing(
                object.conditions_mut(),
                "building artifact: disappeared from storage",
                generation,
            );
        }
    }
    garbage_collect(
        context,
        object_dir(kind, object),
        object.artifact().map(|a| a.path.clone()),
    )
    .await;
    Ok(())
}

/// Records a newly stored artifact in status, announces it and garbage collects the old one.
pub async fn publish_artifact<K: SourceObject>(
    context: &SourceContext,
    object: &mut K,
    kind: &str,
    publication: Publication,
) -> Artifact {
    let generation = object.meta().generation;
    let artifact = artifact_for(
        context,
        &publication.stored,
        &publication.revision,
        publication.metadata,
    );
    let digest_changed = object
        .artifact()
        .is_none_or(|current| current.digest != artifact.digest);
    *object.artifact_mut() = Some(artifact.clone());
    conditions::remove(object.conditions_mut(), ARTIFACT_OUTDATED);
    status::mark_true(
        object.conditions_mut(),
        ARTIFACT_IN_STORAGE,
        reason::SUCCEEDED,
        &publication.stored_message,
        generation,
    );
    let event = if digest_changed {
        let event = ObjectEvent::info("NewArtifact", publication.new_artifact_message)
            .with_revision(publication.revision.clone())
            .with_metadata(digest_suffix(), artifact.digest.clone());
        match publication
            .committed_at
            .and_then(|seconds| Timestamp::from_second(seconds).ok())
        {
            Some(time) => event.with_metadata(COMMIT_TIME_METADATA, time.to_string()),
            None => event,
        }
    } else {
        ObjectEvent::trace(
            reason::ARTIFACT_UP_TO_DATE,
            format!(
                "artifact up-to-date with remote revision: '{}'",
                publication.revision
            ),
        )
    };
    context.runtime.events.publish(&*object, event).await;
    garbage_collect(
        context,
        object_dir(kind, object),
        Some(artifact.path.clone()),
    )
    .await;
    artifact
}

/// Removes superseded artifacts; failures are logged, never fatal.
pub async fn garbage_collect(context: &SourceContext, dir: String, current: Option<String>) {
    let storage = context.storage.clone();
    let log_dir = dir.clone();
    let result =
        tokio::task::spawn_blocking(move || storage.garbage_collect(&dir, current.as_deref()))
            .await;
    match result {
        Ok(Ok(removed)) if !removed.is_empty() => {
            tracing::debug!(dir = %log_dir, count = removed.len(), "garbage collected artifacts");
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(dir = %log_dir, %error, "garbage collection failed"),
        Err(error) => tracing::warn!(dir = %log_dir, %error, "garbage collection task failed"),
    }
}

/// Builds the status artifact for a stored file.
fn artifact_for(
    context: &SourceContext,
    stored: &StoredFile,
    revision: &str,
    metadata: BTreeMap<String, String>,
) -> Artifact {
    Artifact {
        digest: stored.digest.clone(),
        last_update_time: Time(now_seconds()),
        metadata,
        path: stored.path.clone(),
        revision: revision.to_owned(),
        size: i64::try_from(stored.size).ok(),
        url: context.storage.url_for(&stored.path),
    }
}

fn now_seconds() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// The metadata key suffix of `source.toolkit.fluxcd.io/digest` (the sink adds the group).
fn digest_suffix() -> &'static str {
    DIGEST_EVENT_METADATA_KEY
        .rsplit('/')
        .next()
        .unwrap_or(DIGEST_EVENT_METADATA_KEY)
}
