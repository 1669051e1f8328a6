//! What can go wrong talking to a registry; every message says what failed and what to do, and
//! none carries a password, token or `Authorization` header.

use std::time::Duration;

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The image reference cannot be parsed.
    #[error("invalid image '{image}': {reason}")]
    InvalidImage { image: String, reason: String },
    /// The client settings are unusable (CA bundle, client certificate, proxy).
    #[error("invalid registry access settings: {0}")]
    Config(String),
    /// The registry (or its token service) refused the credentials: Flux's `AuthenticationFailed`.
    #[error(
        "authentication to {registry} failed: {detail}; check the credentials in spec.secretRef or the ServiceAccount's imagePullSecrets"
    )]
    AuthenticationFailed { registry: String, detail: String },
    /// The repository or manifest does not exist.
    #[error("{what} not found on {registry}: {detail}; check the image name and tag")]
    NotFound {
        registry: String,
        what: String,
        detail: String,
    },
    /// No connection could be made: DNS, refused connection, proxy.
    #[error(
        "registry {registry} is unreachable: {detail}; check the host, port, network policy and spec.proxySecretRef"
    )]
    Unreachable { registry: String, detail: String },
    /// The TLS handshake failed, e.g. an unknown certificate authority or a missing client certificate.
    #[error(
        "TLS with {registry} failed: {detail}; check spec.certSecretRef (ca.crt, tls.crt, tls.key) or set spec.insecure for a plain-HTTP registry"
    )]
    Tls { registry: String, detail: String },
    /// A request did not finish within the timeout.
    #[error(
        "request to {registry} timed out after {timeout:?}; raise spec.timeout or check that the registry responds"
    )]
    Timeout { registry: String, timeout: Duration },
    /// The registry answered with an unexpected status, e.g. 429 or 5xx.
    #[error("{what} on {registry} failed: {detail}; retry later or check the registry")]
    Status {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    /// Pulled content could not be written where the caller asked.
    #[error("{0}; check the controller's storage")]
    Storage(String),
    /// The registry's answer is malformed or breaks a rule (foreign next link, too many tags).
    #[error("invalid response from {registry}: {detail}")]
    InvalidResponse { registry: String, detail: String },
}

impl RegistryError {
    /// Whether Flux would report this as `AuthenticationFailed`.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self, Self::AuthenticationFailed { .. })
    }
}

/// The error and its sources, e.g. `error sending request: connection refused`.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}
