//! Credentials from a Flux Secret, as git sees them: an authorization header, TLS files and an
//! SSH identity, with the values to redact from git's output.

use base64::Engine;
use sluice_secrets::{SecretData, SecretError};

/// Credentials from a GitRepository `secretRef`.
#[derive(Clone, Default)]
pub struct GitCredentials {
    pub(crate) basic: Option<(String, String)>,
    pub(crate) bearer: Option<String>,
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) client_cert: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) ssh_identity: Option<Vec<u8>>,
    pub(crate) ssh_password: Option<String>,
    pub(crate) known_hosts: Option<Vec<u8>>,
}

impl GitCredentials {
    /// Reads the keys Flux supports: `username`/`password`, `bearerToken`, `ca.crt` (or legacy
    /// `caFile`), `tls.crt`/`tls.key`, `identity`, `known_hosts` and `password` for SSH keys.
    pub fn from_secret(secret: &SecretData, ssh: bool) -> Result<Self, SecretError> {
        if secret.bytes("githubAppID").is_some() {
            return Err(secret.invalid(
                "GitHub App keys need spec.provider 'github', which this controller does not support; use a token or deploy key",
            ));
        }
        let mut credentials = Self {
            ca: secret
                .bytes("ca.crt")
                .or_else(|| secret.bytes("caFile"))
                .map(<[u8]>::to_vec),
            ..Self::default()
        };
        match (secret.bytes("tls.crt"), secret.bytes("tls.key")) {
            (Some(cert), Some(key)) => {
                credentials.client_cert = Some((cert.to_vec(), key.to_vec()))
            }
            (None, None) => {}
            _ => {
                return Err(secret.invalid(
                    "'tls.crt' and 'tls.key' must be set together for a client certificate",
                ));
            }
        }
        if ssh {
            credentials.ssh_identity = secret.bytes("identity").map(<[u8]>::to_vec);
            credentials.known_hosts = secret.bytes("known_hosts").map(<[u8]>::to_vec);
            credentials.ssh_password = secret.text("password")?.filter(|p| !p.is_empty());
            if credentials.ssh_identity.is_none() || credentials.known_hosts.is_none() {
                return Err(secret.invalid(
                    "SSH access needs both 'identity' (private key) and 'known_hosts' keys",
                ));
            }
        } else {
            let username = secret.text("username")?.unwrap_or_default();
            let password = secret.text("password")?.unwrap_or_default();
            if !username.is_empty() || !password.is_empty() {
                credentials.basic = Some((username, password));
            }
            credentials.bearer = secret.text("bearerToken")?.filter(|t| !t.is_empty());
            if credentials.basic.is_some() && credentials.bearer.is_some() {
                return Err(
                    secret.invalid("set either 'username'/'password' or 'bearerToken', not both")
                );
            }
        }
        Ok(credentials)
    }

    pub(crate) fn authorization_header(&self) -> Option<String> {
        if let Some(token) = &self.bearer {
            return Some(format!("Authorization: Bearer {token}"));
        }
        self.basic.as_ref().map(|(username, password)| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            format!("Authorization: Basic {encoded}")
        })
    }

    pub(crate) fn redactions(&self) -> Vec<String> {
        let mut values = Vec::new();
        if let Some((username, password)) = &self.basic {
            values.push(password.clone());
            values.push(
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
            );
        }
        values.extend(self.bearer.clone());
        values.extend(self.ssh_password.clone());
        values
    }
}
