//! Registry access as OCIRepository and `type: oci` HelmRepository describe it alike:
//! `insecure`, `timeout` (default 60 s) and `certSecretRef`; each kind adds its own login.

use std::fmt::Display;
use std::time::Duration;

use sluice_api::duration::parse_duration;
use sluice_runtime::Outcome;
use sluice_secrets::{RegistryAccess, SecretData, read_secret};

use super::SourceContext;

/// Default of `spec.timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Access with `insecure` and `timeout` (unparsable or absent: the default).
pub(super) fn base_access(insecure: bool, timeout: Option<&str>) -> RegistryAccess {
    RegistryAccess {
        insecure,
        timeout: timeout
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT),
        ..RegistryAccess::default()
    }
}

/// Secret `name` of `namespace`; a failure is the kind's authentication failure.
pub(super) async fn secret(
    context: &SourceContext,
    namespace: &str,
    name: &str,
    failure: &impl Fn(&dyn Display) -> Outcome,
) -> Result<SecretData, Outcome> {
    read_secret(&context.runtime.client, namespace, name)
        .await
        .map_err(|e| failure(&e))
}

/// Adds the CA and client certificate of `certSecretRef` (when set) to `access`.
pub(super) async fn apply_cert_secret(
    context: &SourceContext,
    namespace: &str,
    cert_secret: Option<&str>,
    access: &mut RegistryAccess,
    failure: &impl Fn(&dyn Display) -> Outcome,
) -> Result<(), Outcome> {
    let Some(name) = cert_secret else {
        return Ok(());
    };
    let secret = secret(context, namespace, name, failure).await?;
    access.apply_cert_secret(&secret).map_err(|e| failure(&e))
}
