//! Registry access from a `kubernetes.io/dockerconfigjson` Secret (Flux's `secretRef` on OCI
//! and image objects).

use std::time::Duration;

use base64::Engine;

use crate::secret::{SecretData, SecretError};

/// Access settings for one registry.
#[derive(Clone, Default)]
pub struct RegistryAccess {
    /// Username and password, e.g. from [`docker_credentials`].
    pub auth: Option<(String, String)>,
    /// PEM CA bundle trusted in addition to the system roots.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate (chain) followed by its private key, for registries requiring mTLS.
    pub client_identity: Option<Vec<u8>>,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Proxy URL, credentials embedded (see [`crate::ProxySettings`]).
    pub proxy: Option<String>,
    /// Bound on each registry request.
    pub timeout: Duration,
}

impl RegistryAccess {
    /// Applies a `certSecretRef` Secret: `ca.crt` as CA bundle, `tls.crt` + `tls.key` as client identity.
    pub fn apply_cert_secret(&mut self, secret: &SecretData) -> Result<(), SecretError> {
        self.ca = secret.bytes("ca.crt").map(<[u8]>::to_vec);
        self.client_identity = match (secret.bytes("tls.crt"), secret.bytes("tls.key")) {
            (Some(cert), Some(key)) => {
                let mut pem = cert.to_vec();
                if !pem.ends_with(b"\n") {
                    pem.push(b'\n');
                }
                pem.extend_from_slice(key);
                Some(pem)
            }
            (None, None) => None,
            _ => {
                return Err(secret.invalid(
                    "'tls.crt' and 'tls.key' must be set together for a client certificate",
                ));
            }
        };
        Ok(())
    }
}

/// Reads credentials for `registry` from a `kubernetes.io/dockerconfigjson` Secret.
pub fn docker_credentials(
    secret: &SecretData,
    registry: &str,
) -> Result<Option<(String, String)>, SecretError> {
    let raw = secret.bytes(".dockerconfigjson").ok_or_else(|| {
        secret.invalid(
            "missing '.dockerconfigjson'; create it with kubectl create secret docker-registry",
        )
    })?;
    let config: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|_| secret.invalid("'.dockerconfigjson' is not valid JSON"))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let host_of = |key: &str| {
        let key = key.split_once("://").map_or(key, |(_, rest)| rest);
        key.split('/').next().unwrap_or_default().to_owned()
    };
    let Some(entry) = auths
        .iter()
        .find(|(key, _)| host_of(key) == registry)
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (username, password) = (field("username"), field("password"));
    if !username.is_empty() || !password.is_empty() {
        return Ok(Some((username, password)));
    }
    let auth = field("auth");
    if auth.is_empty() {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            secret.invalid(format!(
                "the 'auth' entry for '{registry}' is not base64 'user:password'"
            ))
        })?;
    Ok(decoded
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_lookup() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw");
        let config = serde_json::json!({"auths": {
            "https://127.0.0.1:5000": {"auth": auth},
            "other.io": {"username": "u", "password": "p"}
        }});
        let secret = SecretData::from_entries(
            "ns",
            "regcred",
            [(
                ".dockerconfigjson".to_owned(),
                config.to_string().into_bytes(),
            )],
        );
        assert_eq!(
            docker_credentials(&secret, "127.0.0.1:5000").unwrap(),
            Some(("bob".into(), "pw".into()))
        );
        assert_eq!(
            docker_credentials(&secret, "other.io").unwrap(),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(docker_credentials(&secret, "none.io").unwrap(), None);
    }

    #[test]
    fn cert_secret_sets_ca_and_client_identity() {
        let secret = |entries: &[(&str, &str)]| {
            SecretData::from_entries(
                "ns",
                "certs",
                entries
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())),
            )
        };
        let mut access = RegistryAccess::default();
        access
            .apply_cert_secret(&secret(&[
                ("ca.crt", "CA"),
                ("tls.crt", "CRT"),
                ("tls.key", "KEY"),
            ]))
            .unwrap();
        assert_eq!(access.ca.as_deref(), Some(&b"CA"[..]));
        assert_eq!(access.client_identity.as_deref(), Some(&b"CRT\nKEY"[..]));
        let message = access
            .apply_cert_secret(&secret(&[("tls.crt", "CRT")]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("must be set together"), "{message}");
    }
}
