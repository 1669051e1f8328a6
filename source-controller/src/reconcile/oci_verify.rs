//! OCIRepository signature verification (`spec.verify`): cosign signatures of the resolved
//! manifest checked against the public keys of `verify.secretRef`, recorded in `SourceVerified`
//! as Flux records them. Keyless cosign and notation stall, naming the field. The key, signature
//! and condition helpers serve HelmChart verification too (`helmchart_verify`).

use kube::{Resource, ResourceExt};
use sluice_api::meta::condition_type::SOURCE_VERIFIED;
use sluice_api::meta::{LocalObjectReference, reason};
use sluice_api::source::{OCIRepository, OCIRepositoryVerification, OCIVerificationProvider};
use sluice_api::{FluxObject, SourceObject};
use sluice_runtime::Outcome;
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_secrets::{SecretError, read_secret};

use super::{SourceContext, step};
use crate::cosign::{CosignError, TrustedKeys};
use crate::oci::{OciError, OciRemote, ResolvedArtifact};
use crate::status;

/// Stall reason for verification modes this controller does not implement.
pub const VERIFY_NOT_SUPPORTED: &str = "VerifyNotSupported";

/// Why the signature check failed; wrapped in Flux's "failed to verify the signature" message.
#[derive(Debug, thiserror::Error)]
pub(super) enum VerifyFailure {
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Cosign(#[from] CosignError),
    #[error("{0}")]
    Registry(#[from] OciError),
    #[error("spec.verify.secretRef is not set; name the Secret holding the cosign public key")]
    NoSecretRef,
}

/// Flux's start of a reconcile: a failed verification is evaluated again, and without
/// `spec.verify` (`verify` false) no verification is reported.
pub fn reset_verification<O: FluxObject>(object: &mut O, verify: bool) {
    let failed = object
        .condition(SOURCE_VERIFIED)
        .is_some_and(|c| c.status == ConditionStatus::False.as_str());
    if failed || !verify {
        conditions::remove(object.conditions_mut(), SOURCE_VERIFIED);
    }
}

/// Stalls on notation and on keyless cosign (no `secretRef`), which need infrastructure this
/// controller does not talk to.
pub fn unsupported_verification(object: &mut OCIRepository) -> Result<(), Outcome> {
    let Some(verification) = &object.spec.verification else {
        return Ok(());
    };
    if let Err(unsupported) = key_secret(verification.provider, verification.secret_ref.as_ref()) {
        let message = unsupported.to_string();
        mark_unverified(object, &message);
        return Err(step::stalled(VERIFY_NOT_SUPPORTED, message));
    }
    Ok(())
}

/// A verification mode this controller does not implement, in Flux's message shape.
#[derive(Debug, thiserror::Error)]
#[error("failed to verify the signature using provider '{provider}': {detail}")]
pub struct UnsupportedMode {
    provider: &'static str,
    detail: &'static str,
}

/// The Secret holding the trusted public keys: cosign with a key pair is the one mode verified
/// here; notation and keyless cosign are [`UnsupportedMode`].
pub fn key_secret(
    provider: OCIVerificationProvider,
    secret_ref: Option<&LocalObjectReference>,
) -> Result<&LocalObjectReference, UnsupportedMode> {
    match (provider, secret_ref) {
        (OCIVerificationProvider::Cosign, Some(secret)) => Ok(secret),
        (OCIVerificationProvider::Notation, _) => Err(UnsupportedMode {
            provider: "notation",
            detail: "spec.verify.provider 'notation' is not supported by this source-controller; \
                     sign the artifact with cosign and set provider 'cosign' with spec.verify.secretRef",
        }),
        (OCIVerificationProvider::Cosign, None) => Err(UnsupportedMode {
            provider: "cosign keyless",
            detail: "keyless verification (spec.verify without secretRef; matchOIDCIdentity, \
                     trustedRootSecretRef) needs Fulcio and Rekor and is not supported by this \
                     source-controller; sign with a key pair and set spec.verify.secretRef to a \
                     Secret holding the public key as '<name>.pub'",
        }),
    }
}

/// Flux's rule: verify a revision the artifact does not have yet, a new generation, or again
/// after a failure.
fn requires_verification(object: &OCIRepository, revision: &str) -> bool {
    let new_revision = object.artifact().is_none_or(|a| !a.has_revision(revision));
    let generation = object.meta().generation;
    new_revision
        || object.condition(SOURCE_VERIFIED).is_none_or(|c| {
            c.observed_generation != generation || c.status != ConditionStatus::True.as_str()
        })
}

/// Verifies the resolved manifest when `spec.verify` asks for it: `SourceVerified=True`, or
/// `SourceVerified=False`/`VerificationError` and a failure that keeps the stored artifact.
pub async fn verify_artifact(
    context: &SourceContext,
    object: &mut OCIRepository,
    remote: &OciRemote,
    resolved: &ResolvedArtifact,
) -> Result<(), Outcome> {
    let Some(verification) = object.spec.verification.clone() else {
        return Ok(());
    };
    if !requires_verification(object, &resolved.revision) {
        return Ok(());
    }
    match verified_key(context, object, &verification, remote, resolved).await {
        Ok(key) => {
            tracing::debug!(revision = %resolved.revision, key, "verified cosign signature");
            let message = format!("verified signature of revision {}", resolved.revision);
            let generation = object.meta().generation;
            status::mark_true(
                object.conditions_mut(),
                SOURCE_VERIFIED,
                reason::SUCCEEDED,
                &message,
                generation,
            );
            Ok(())
        }
        Err(error) => {
            let message =
                format!("failed to verify the signature using provider 'cosign': {error}");
            mark_unverified(object, &message);
            Err(step::recorded(reason::VERIFICATION_ERROR, message))
        }
    }
}

/// Reads the trusted keys, pulls the signatures and returns the name of the key that verified.
async fn verified_key(
    context: &SourceContext,
    object: &OCIRepository,
    verification: &OCIRepositoryVerification,
    remote: &OciRemote,
    resolved: &ResolvedArtifact,
) -> Result<String, VerifyFailure> {
    let Some(secret_ref) = &verification.secret_ref else {
        return Err(VerifyFailure::NoSecretRef);
    };
    let keys = trusted_keys(context, object, &secret_ref.name).await?;
    signing_key(remote, &resolved.digest, &keys).await
}

/// The public keys of Secret `secret` in the object's namespace.
pub(super) async fn trusted_keys<O: FluxObject>(
    context: &SourceContext,
    object: &O,
    secret: &str,
) -> Result<TrustedKeys, VerifyFailure> {
    let namespace = object.namespace().unwrap_or_default();
    let secret = read_secret(&context.runtime.client, &namespace, secret).await?;
    Ok(TrustedKeys::from_secret(&secret)?)
}

/// Pulls the cosign signatures of manifest `digest` and returns the name of the key that signed it.
pub(super) async fn signing_key(
    remote: &OciRemote,
    digest: &str,
    keys: &TrustedKeys,
) -> Result<String, VerifyFailure> {
    let signatures = remote.cosign_signatures(digest).await?;
    let reference = remote.digest_reference(digest);
    Ok(keys.verify(&reference, digest, &signatures)?.to_owned())
}

/// `SourceVerified=False`/`VerificationError` with `message`.
pub(super) fn mark_unverified<O: FluxObject>(object: &mut O, message: &str) {
    let generation = object.meta().generation;
    conditions::set(
        object.conditions_mut(),
        SOURCE_VERIFIED,
        ConditionStatus::False,
        reason::VERIFICATION_ERROR,
        message,
        generation,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVISION: &str =
        "v1@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// Generation 2, verified (`status`) at `verified_generation`, with an artifact of REVISION.
    fn repository(verify: bool, verified: &str, verified_generation: i64) -> OCIRepository {
        let mut spec = serde_json::json!({"url": "oci://127.0.0.1:5000/app", "interval": "1m"});
        if verify {
            spec["verify"] = serde_json::json!({"provider": "cosign", "secretRef": {"name": "k"}});
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": "ns", "generation": 2},
            "spec": spec,
            "status": {
                "artifact": {"revision": REVISION, "digest": "sha256:22", "path": "p", "url": "u",
                             "lastUpdateTime": "2026-01-01T00:00:00Z"},
                "conditions": [{"type": "SourceVerified", "status": verified, "reason": "Succeeded",
                                "message": "m", "observedGeneration": verified_generation,
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn verification_runs_again_only_for_a_new_revision_generation_or_failure() {
        assert!(!requires_verification(
            &repository(true, "True", 2),
            REVISION
        ));
        assert!(requires_verification(
            &repository(true, "True", 2),
            "v2@sha256:3333333333333333333333333333333333333333333333333333333333333333"
        ));
        assert!(requires_verification(
            &repository(true, "True", 1),
            REVISION
        ));
        assert!(requires_verification(
            &repository(true, "False", 2),
            REVISION
        ));
        let mut unverified = repository(true, "True", 2);
        conditions::remove(unverified.conditions_mut(), SOURCE_VERIFIED);
        assert!(requires_verification(&unverified, REVISION));
    }

    #[test]
    fn a_failed_verification_or_a_removed_verify_clears_source_verified() {
        for (verify, status, kept) in [
            (true, "True", true),
            (true, "False", false),
            (false, "True", false),
        ] {
            let mut object = repository(verify, status, 2);
            reset_verification(&mut object, verify);
            assert_eq!(
                object.condition(SOURCE_VERIFIED).is_some(),
                kept,
                "verify: {verify}, SourceVerified={status}"
            );
        }
    }

    #[test]
    fn keyless_and_notation_stall_and_key_pairs_do_not() {
        let mut keyed = repository(true, "True", 2);
        assert!(unsupported_verification(&mut keyed).is_ok());
        for (verification, field) in [
            (
                serde_json::json!({"provider": "cosign"}),
                "spec.verify.secretRef",
            ),
            (
                serde_json::json!({"provider": "notation", "secretRef": {"name": "k"}}),
                "provider 'notation'",
            ),
        ] {
            let mut object = repository(false, "True", 2);
            object.spec.verification = Some(serde_json::from_value(verification).unwrap());
            let outcome = unsupported_verification(&mut object).unwrap_err();
            let failure = outcome.failure().unwrap();
            assert_eq!(failure.reason, VERIFY_NOT_SUPPORTED);
            assert!(failure.message.contains(field), "{}", failure.message);
            let condition = object.condition(SOURCE_VERIFIED).unwrap();
            assert_eq!(condition.status, "False");
            assert_eq!(condition.reason, reason::VERIFICATION_ERROR);
        }
    }
}
