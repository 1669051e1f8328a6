//! Proxy settings from a `proxySecretRef` Secret.

use crate::secret::{SecretData, SecretError};

/// Proxy settings from a `proxySecretRef` Secret (`address`, optional `username`/`password`).
#[derive(Clone)]
pub struct ProxySettings {
    /// The proxy URL with credentials embedded, e.g. `http://user:pass@proxy:3128`.
    pub url: String,
    /// Values to redact from any output.
    pub secrets: Vec<String>,
}

impl ProxySettings {
    /// Parses a proxy Secret.
    pub fn from_secret(secret: &SecretData) -> Result<Self, SecretError> {
        let address = secret
            .text("address")?
            .filter(|address| !address.is_empty())
            .ok_or_else(|| secret.invalid("the proxy secret needs an 'address' key"))?;
        let Some((scheme, rest)) = address.split_once("://") else {
            return Err(
                secret.invalid("'address' must be a URL with an http, https or socks5 scheme")
            );
        };
        if !matches!(scheme, "http" | "https" | "socks5") {
            return Err(secret.invalid(format!(
                "proxy scheme '{scheme}' is not supported; use http, https or socks5"
            )));
        }
        let username = secret.text("username")?.unwrap_or_default();
        let password = secret.text("password")?.unwrap_or_default();
        let mut secrets = Vec::new();
        let url = if username.is_empty() {
            address.clone()
        } else {
            secrets.push(password.clone());
            format!(
                "{scheme}://{}:{}@{rest}",
                percent_encode(&username),
                percent_encode(&password)
            )
        };
        secrets.push(url.clone());
        Ok(Self { url, secrets })
    }
}

/// Percent-encodes everything but unreserved URL characters.
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(entries: &[(&str, &str)]) -> SecretData {
        SecretData::from_entries(
            "ns",
            "proxy",
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())),
        )
    }

    #[test]
    fn proxy_url_embeds_encoded_credentials() {
        let proxy = ProxySettings::from_secret(&secret(&[
            ("address", "http://127.0.0.1:3128"),
            ("username", "u"),
            ("password", "p@ss word"),
        ]))
        .unwrap();
        assert_eq!(proxy.url, "http://u:p%40ss%20word@127.0.0.1:3128");
        assert!(ProxySettings::from_secret(&secret(&[("address", "ftp://x")])).is_err());
        assert!(ProxySettings::from_secret(&secret(&[])).is_err());
    }
}
