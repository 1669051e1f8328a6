//! GitRepository signature verification (`spec.verify`): PGP or SSH signatures of the HEAD
//! commit and/or the tag, recorded in `SourceVerified` and `status.sourceVerificationMode`.

use std::path::Path;

use kube::{Resource, ResourceExt};
use sluice_api::FluxObject;
use sluice_api::meta::condition_type::SOURCE_VERIFIED;
use sluice_api::meta::reason;
use sluice_api::source::{GitRepository, GitRepositoryVerification, GitVerificationMode};
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_runtime::{ObjectEvent, Outcome};

use super::{SourceContext, step};
use crate::status;
use crate::verify::{TrustedKeys, Verifier, VerifyError};
use sluice_git::CheckedOut;
use sluice_secrets::read_secret;

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
pub fn requires_verification(object: &GitRepository) -> bool {
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

/// Records `SourceVerified=False` and returns the failure that ends the reconcile.
fn unverified(object: &mut GitRepository, reason: &str, message: String) -> Outcome {
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
        return step::stalled(reason, message);
    }
    step::recorded(reason, message)
}

/// Flux's `verifySignature`: checks the tag and/or HEAD signature against the trusted keys of
/// `spec.verify.secretRef` and records `SourceVerified` and `status.sourceVerificationMode`.
pub async fn verify_signature(
    context: &SourceContext,
    object: &mut GitRepository,
    verification: &GitRepositoryVerification,
    checkout_dir: &Path,
    checked_out: &CheckedOut,
) -> Result<(), Outcome> {
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
        match verify_tag(&verifier, checkout_dir, checked_out).await {
            Ok(line) => message.push_str(&line),
            Err((reason, failure)) => return Err(unverified(object, reason, failure)),
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
pub fn clear_verification(object: &mut GitRepository) {
    if object.spec.verification.is_none() {
        if let Some(status) = object.status.as_mut() {
            status.source_verification_mode = None;
        }
        conditions::remove(object.conditions_mut(), SOURCE_VERIFIED);
    }
}

/// Verifies the checked-out tag object: the line for the success message, or the failure's
/// reason and message.
async fn verify_tag(
    verifier: &Verifier,
    checkout_dir: &Path,
    checked_out: &CheckedOut,
) -> Result<String, (&'static str, String)> {
    let Some(tag) = &checked_out.tag else {
        let message = "cannot verify tag object's signature if a tag reference is not specified";
        return Err((reason::INVALID_VERIFICATION_MODE, message.to_owned()));
    };
    let unsigned = |display: &str| {
        let message = format!("cannot verify signature of tag '{display}' since it is not signed");
        ("InvalidGitObject", message)
    };
    let Some(tag_object) = &tag.object else {
        return Err(unsigned(&tag.name));
    };
    let tag_display = format!("{}@{tag_object}", tag.name);
    match verifier.verify_tag(checkout_dir, tag_object).await {
        Ok(key) => Ok(format!("\n\t- tag '{tag_display}' with key '{key}'")),
        Err(VerifyError::Unsigned(_)) => Err(unsigned(&tag_display)),
        Err(error) => {
            let reason = match error {
                VerifyError::Invalid(_) => reason::INVALID_TAG_SIGNATURE,
                _ => reason::VERIFICATION_ERROR,
            };
            let message = format!("signature verification of tag '{tag_display}' failed: {error}");
            Err((reason, message))
        }
    }
}
