//! Step 2: the source artifact, the `dependsOn` gate, and the artifact's files on disk.
//!
//! A source without an artifact, a dependency that is not ready and an artifact the source has
//! not stored yet are waits, not failures: `Ready=False`, no warning event, retried after
//! `--requeue-dependency`, as in Flux.

use sluice_artifact::fetch::CachedArtifact;

use sluice_api::duration::format_duration;
use sluice_api::kustomize::Kustomization;
use sluice_api::meta::{Artifact, reason};
use sluice_runtime::{ObjectEvent, Outcome};

use super::Context;
use crate::dependson::{DependencyError, check_dependencies};
use crate::source::source_artifact;

/// Flux's message while the source has no artifact.
const ARTIFACT_NOT_FOUND: &str = "Source is not ready, artifact not found";

/// The artifact of the Kustomization's source.
pub async fn artifact(context: &Context, ks: &Kustomization) -> Result<Artifact, Outcome> {
    match source_artifact(&context.runtime.client, &context.sources, ks).await {
        Ok(Some(artifact)) => Ok(artifact),
        Ok(None) => Err(Outcome::waiting(
            reason::ARTIFACT_FAILED,
            ARTIFACT_NOT_FOUND,
        )),
        Err(error) => Err(Outcome::retry(reason::ARTIFACT_FAILED, error.to_string())),
    }
}

/// Waits until every `dependsOn` entry is ready (and has applied `revision` of a shared source),
/// announcing the wait in an info event.
pub async fn dependencies(
    context: &Context,
    ks: &Kustomization,
    revision: &str,
) -> Result<(), Outcome> {
    let additive = context.flags.additive_cel_dependency_check;
    let checking = check_dependencies(&context.runtime.client, ks, revision, additive);
    let error = match checking.await {
        Ok(()) => return Ok(()),
        Err(DependencyError::InvalidExpr(error)) => {
            return Err(Outcome::stalled(
                reason::INVALID_CEL_EXPRESSION,
                error.to_string(),
            ));
        }
        Err(error) => error,
    };
    let message = format!(
        "Dependencies do not meet ready condition ({error}), retrying in {}",
        format_duration(context.runtime.flags.requeue_dependency)
    );
    let event = ObjectEvent::info(reason::DEPENDENCY_NOT_READY, message.clone())
        .with_revision(revision.to_owned());
    context.runtime.events.publish(ks, event).await;
    Err(Outcome::waiting(reason::DEPENDENCY_NOT_READY, message))
}

/// The unpacked artifact, downloaded unless cached; kept in the cache while held.
pub async fn fetch(context: &Context, artifact: &Artifact) -> Result<CachedArtifact, Outcome> {
    context.fetcher.fetch(artifact).await.map_err(|error| {
        if error.is_not_found() {
            Outcome::waiting(reason::ARTIFACT_FAILED, error.to_string())
        } else {
            Outcome::retry(reason::ARTIFACT_FAILED, error.to_string())
        }
    })
}
