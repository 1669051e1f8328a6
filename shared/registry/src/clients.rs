//! HTTP clients built from [`RegistryAccess`] (CA bundle, client certificate, proxy, timeout),
//! kept in a bounded cache: building one loads the system roots, which costs more than a listing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sluice_secrets::RegistryAccess;

use crate::RegistryError;
use crate::error::chain;

/// Used when [`RegistryAccess::timeout`] is zero.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Clients by a fingerprint of the settings they were built from; at most `capacity`.
pub(crate) struct ClientCache {
    entries: HashMap<[u8; 32], (reqwest::Client, Instant)>,
    capacity: usize,
}

impl ClientCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The client for `access`, built on first use; evicts the least recently used when full.
    pub(crate) fn client(
        &mut self,
        access: &RegistryAccess,
    ) -> Result<reqwest::Client, RegistryError> {
        let key = fingerprint(access);
        let now = Instant::now();
        if let Some((client, used)) = self.entries.get_mut(&key) {
            *used = now;
            return Ok(client.clone());
        }
        let client = http_client(access, effective_timeout(access))?;
        if self.capacity == 0 {
            return Ok(client);
        }
        if self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (client.clone(), now));
        Ok(client)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// SHA-256 over every setting that shapes the client (not `insecure` or `auth`, used per request).
fn fingerprint(access: &RegistryAccess) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(effective_timeout(access).as_nanos().to_le_bytes());
    for part in [
        access.ca.as_deref(),
        access.client_identity.as_deref(),
        access.proxy.as_deref().map(str::as_bytes),
    ] {
        match part {
            Some(bytes) => {
                hasher.update([1]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
            None => hasher.update([0]),
        }
    }
    hasher.finalize().into()
}

/// The access's timeout, or [`DEFAULT_TIMEOUT`] when it is zero.
pub(crate) fn effective_timeout(access: &RegistryAccess) -> Duration {
    if access.timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        access.timeout
    }
}

fn http_client(
    access: &RegistryAccess,
    timeout: Duration,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("sluice-registry/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &access.ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                RegistryError::Config(
                    "the CA bundle (ca.crt) holds no valid PEM certificate".into(),
                )
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(identity) = &access.client_identity {
        let identity = reqwest::Identity::from_pem(identity).map_err(|_| {
            RegistryError::Config(
                "the client certificate and key (tls.crt, tls.key) are not a valid PEM pair".into(),
            )
        })?;
        builder = builder.identity(identity);
    }
    if let Some(proxy) = &access.proxy {
        let proxy = reqwest::Proxy::all(proxy).map_err(|_| {
            RegistryError::Config(
                "the proxy address from spec.proxySecretRef is not a valid URL".into(),
            )
        })?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| RegistryError::Config(format!("cannot build the HTTP client: {}", chain(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_reused_per_settings_and_bounded() {
        let mut cache = ClientCache::new(2);
        let access = |proxy: &str| RegistryAccess {
            proxy: Some(proxy.to_owned()),
            ..RegistryAccess::default()
        };
        for proxy in ["http://a:1", "http://a:1", "http://b:1"] {
            cache.client(&access(proxy)).unwrap();
        }
        assert_eq!(cache.len(), 2);
        cache.client(&access("http://c:1")).unwrap();
        assert_eq!(cache.len(), 2);
        assert_ne!(
            fingerprint(&access("http://a:1")),
            fingerprint(&access("http://b:1"))
        );
        let insecure = RegistryAccess {
            insecure: true,
            ..access("http://a:1")
        };
        assert_eq!(fingerprint(&insecure), fingerprint(&access("http://a:1")));
        let bad = RegistryAccess {
            client_identity: Some(b"not pem".to_vec()),
            ..RegistryAccess::default()
        };
        assert!(matches!(cache.client(&bad), Err(RegistryError::Config(_))));
    }
}
