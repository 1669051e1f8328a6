//! HelmChart `spec.verify` for charts from a `type: oci` HelmRepository: at every reconcile, as
//! in Flux, the cosign signatures of the chart version's manifest are checked against the public
//! keys of `verify.secretRef`; the chart is then pulled by the digest that verified.

use sluice_api::FluxObject;
use sluice_api::meta::condition_type::{BUILD_FAILED, FETCH_FAILED, SOURCE_VERIFIED};
use sluice_api::meta::reason;
use sluice_api::source::{HelmChart, OCIRepositoryRef};
use sluice_runtime::Outcome;
use sluice_runtime::conditions;
use sluice_secrets::RegistryAccess;

use super::oci_verify::{
    self, VERIFY_NOT_SUPPORTED, VerifyFailure, key_secret, mark_unverified, signing_key,
};
use super::{SourceContext, step};
use crate::cosign::TrustedKeys;
use crate::helm::oci::{OciChartRepository, version_to_tag};
use crate::oci::{OciError, OciRemote, Repository};
use crate::status;

/// Flux's reason for a chart whose signature did not verify.
pub(super) const CHART_VERIFICATION_ERROR: &str = "ChartVerificationError";

/// Flux's start of a reconcile: a failed verification is evaluated again, and without
/// `spec.verify` no verification is reported.
pub(super) fn reset_verification(object: &mut HelmChart) {
    let verify = object.spec.verification.is_some();
    oci_verify::reset_verification(object, verify);
}

/// A chart of a `type: default` HelmRepository has no cosign signature: with `spec.verify` the
/// build fails as Flux fails it (`ChartVerificationError`), before the index is read.
pub(super) fn refuse_chart_repository(object: &mut HelmChart) -> Result<(), Outcome> {
    if object.spec.verification.is_none() {
        return Ok(());
    }
    let message = "chart verification error: charts from a HelmRepository of type 'default' \
                   carry no cosign signature; spec.verify works with a HelmRepository of type \
                   'oci': remove spec.verify or pull the chart from an OCI registry";
    Err(verification_failed(object, message.to_owned()))
}

/// Verifies `chart` at `version` when `spec.verify` is set and returns the manifest digest that
/// verified; `None` without `spec.verify`.
pub(super) async fn verified_digest(
    context: &SourceContext,
    object: &mut HelmChart,
    registry: &OciChartRepository,
    access: &RegistryAccess,
    chart: &str,
    version: &str,
) -> Result<Option<String>, Outcome> {
    let Some(verification) = object.spec.verification.clone() else {
        return Ok(None);
    };
    let secret = match key_secret(verification.provider, verification.secret_ref.as_ref()) {
        Ok(secret) => secret.name.clone(),
        Err(unsupported) => {
            let message = unsupported.to_string();
            mark_unverified(object, &message);
            return Err(step::stalled(VERIFY_NOT_SUPPORTED, message));
        }
    };
    let keys = match oci_verify::trusted_keys(context, object, &secret).await {
        Ok(keys) => keys,
        Err(error) => {
            let message =
                format!("failed to verify the signature using provider 'cosign': {error}");
            mark_unverified(object, &message);
            return Err(step::recorded(reason::VERIFICATION_ERROR, message));
        }
    };
    let image = registry.image(chart);
    let tag = version_to_tag(version);
    match signed_digest(&image, access, &tag, &keys).await {
        Ok(digest) => Ok(Some(digest)),
        Err(error) => {
            let message =
                format!("chart verification error: failed to verify oci://{image}:{tag}: {error}");
            Err(verification_failed(object, message))
        }
    }
}

/// `SourceVerified=True` for the chart version that was built from a verified manifest.
pub(super) fn mark_verified(object: &mut HelmChart, version: &str) {
    let generation = object.metadata.generation;
    status::mark_true(
        object.conditions_mut(),
        SOURCE_VERIFIED,
        reason::SUCCEEDED,
        &format!("verified signature of version {version}"),
        generation,
    );
}

/// Resolves `image:tag` and returns its digest when a signature made by one of `keys` names it.
async fn signed_digest(
    image: &str,
    access: &RegistryAccess,
    tag: &str,
    keys: &TrustedKeys,
) -> Result<String, VerifyFailure> {
    let (host, path) = image.split_once('/').ok_or_else(|| {
        OciError::InvalidUrl(format!("'{image}' names no repository on the registry"))
    })?;
    let repository = Repository {
        registry: host.to_owned(),
        repository: path.to_owned(),
    };
    let remote = OciRemote::new(repository, access.clone());
    let reference = OCIRepositoryRef {
        tag: Some(tag.to_owned()),
        ..OCIRepositoryRef::default()
    };
    let digest = remote.resolve(Some(&reference)).await?.digest;
    let key = signing_key(&remote, &digest, keys).await?;
    tracing::debug!(
        image,
        tag,
        digest,
        key,
        "verified the chart's cosign signature"
    );
    Ok(digest)
}

/// Flux's record of a failed chart verification: `BuildFailed`/`ChartVerificationError` and
/// `SourceVerified=False`; the stored artifact stays.
fn verification_failed(object: &mut HelmChart, message: String) -> Outcome {
    conditions::remove(object.conditions_mut(), FETCH_FAILED);
    mark_unverified(object, &message);
    step::failed(BUILD_FAILED, CHART_VERIFICATION_ERROR, message)
}
