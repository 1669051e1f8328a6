//! HelmChart from a HelmRepository of `type: oci`: the version is resolved from the registry's
//! tags (or taken as is when `spec.version` is one exact version), the chart layer is pulled with
//! the repository's `secretRef`, `certSecretRef`, `insecure` and `timeout` (by the digest that
//! verified, with `spec.verify`), and the build goes on as for an HTTP repository. The
//! repository has no artifact, so no source revision is observed.

use kube::ResourceExt;
use sluice_api::meta::condition_type::FETCH_FAILED;
use sluice_api::meta::reason;
use sluice_api::source::{HelmChart, HelmRepository, HelmRepositoryProvider};
use sluice_runtime::Outcome;
use sluice_secrets::{RegistryAccess, SecretData, docker_credentials};

use super::helmchart::{Build, CHART_PULL_ERROR, INVALID_CHART_REFERENCE};
use super::helmchart_remote::{build_pulled, cached_build, remote_version};
use super::helmchart_verify::{mark_verified, verified_digest};
use super::registry_access::{apply_cert_secret, base_access, secret};
use super::{SourceContext, step};
use crate::helm::oci::{OciChartClient, OciChartError, OciChartRepository};

/// A chart from the registry a `type: oci` HelmRepository points at.
pub(super) async fn from_registry(
    context: &SourceContext,
    object: &mut HelmChart,
    repository: &HelmRepository,
) -> Result<Build, Outcome> {
    let (registry, client) = registry_client(context, repository).await?;
    let chart = object.spec.chart.clone();
    let range = object.spec.version.clone().unwrap_or_else(|| "*".into());
    let version = client
        .resolve(&registry, &chart, &range)
        .await
        .map_err(|e| resolve_failure(&e))?;
    let revision = remote_version(object, &version)?;
    let digest = verified_digest(
        context,
        object,
        &registry,
        client.access(),
        &chart,
        &version,
    )
    .await?;
    let build = match cached_build(object, &chart, &revision) {
        Some(cached) => cached,
        None => {
            let limit = context.helm_limits.max_chart_size;
            let bytes = client
                .pull(&registry, &chart, &version, digest.as_deref(), limit)
                .await
                .map_err(|e| pull_failure(&e))?;
            build_pulled(context, object, bytes, revision)?
        }
    };
    if digest.is_some() {
        mark_verified(object, &build.version);
    }
    Ok(build)
}

/// The repository's registry and a client with its credentials, TLS, `insecure` and timeout.
pub(super) async fn registry_client(
    context: &SourceContext,
    repository: &HelmRepository,
) -> Result<(OciChartRepository, OciChartClient), Outcome> {
    let spec = &repository.spec;
    let registry = OciChartRepository::parse(&spec.url).map_err(|e| {
        step::stalled(
            reason::URL_INVALID,
            format!("invalid Helm repository URL: {e}; fix the HelmRepository's spec.url"),
        )
    })?;
    context.check_url(&spec.url).await?;
    let provider = spec.provider.as_ref();
    if spec.secret_ref.is_none() && provider.is_some_and(|p| *p != HelmRepositoryProvider::Generic)
    {
        return Err(step::stalled(
            "InvalidProviderConfiguration",
            format!(
                "HelmRepository '{}': spec.provider {provider:?} (cloud workload identity) is not supported by this source-controller; use 'generic' with spec.secretRef",
                repository.name_any()
            ),
        ));
    }
    let access = access_for(context, repository, &registry).await?;
    Ok((registry, OciChartClient::new(access)))
}

/// `secretRef` (a docker-config Secret, or `username` and `password`), `certSecretRef`,
/// `insecure` and `timeout` of a `type: oci` HelmRepository, as Flux reads them.
async fn access_for(
    context: &SourceContext,
    repository: &HelmRepository,
    registry: &OciChartRepository,
) -> Result<RegistryAccess, Outcome> {
    let spec = &repository.spec;
    let namespace = repository.namespace().unwrap_or_default();
    let auth_failure = |error: &dyn std::fmt::Display| {
        step::failed(
            FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("failed to configure the registry client: {error}"),
        )
    };
    let mut access = base_access(spec.insecure, spec.timeout.as_deref());
    if let Some(reference) = &spec.secret_ref {
        let secret = secret(context, &namespace, &reference.name, &auth_failure).await?;
        access.auth = login(&secret, registry.host()).map_err(|e| auth_failure(&e))?;
    }
    let cert_secret = spec.cert_secret_ref.as_ref().map(|r| r.name.as_str());
    apply_cert_secret(context, &namespace, cert_secret, &mut access, &auth_failure).await?;
    Ok(access)
}

/// Registry credentials from a `secretRef`: a `.dockerconfigjson` entry for `host`, else
/// `username` and `password` (both required).
fn login(
    secret: &SecretData,
    host: &str,
) -> Result<Option<(String, String)>, sluice_secrets::SecretError> {
    if secret.bytes(".dockerconfigjson").is_some() {
        return docker_credentials(secret, host);
    }
    match (secret.text("username")?, secret.text("password")?) {
        (Some(username), Some(password)) => Ok(Some((username, password))),
        _ => Err(secret.invalid(
            "set 'username' and 'password', or '.dockerconfigjson', for the registry login",
        )),
    }
}

/// A failure to choose a version: a bad range or no matching tag stays on the chart reference.
fn resolve_failure(error: &OciChartError) -> Outcome {
    match error {
        OciChartError::InvalidRange { .. }
        | OciChartError::NoTags(_)
        | OciChartError::NoMatch { .. } => step::failed(
            FETCH_FAILED,
            INVALID_CHART_REFERENCE,
            format!(
                "invalid chart reference: failed to get chart version for remote reference: {error}"
            ),
        ),
        _ => pull_failure(error),
    }
}

/// A registry failure: refused credentials are `AuthenticationFailed`, the rest a pull error.
fn pull_failure(error: &OciChartError) -> Outcome {
    if error.is_authentication_failure() {
        return step::failed(
            FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("chart pull error: {error}"),
        );
    }
    step::failed(
        FETCH_FAILED,
        CHART_PULL_ERROR,
        format!("chart pull error: failed to download chart for remote reference: {error}"),
    )
}
