//! Sending one event to one Provider: its Secrets read at dispatch time (as Flux does), an HTTP
//! client with its proxy, CA, client certificate and timeout, and retries.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::Client;
use sha2::{Digest, Sha256};
use sluice_api::notification::{Provider, ProviderType};
use sluice_runtime::events::NotificationEvent;
use sluice_secrets::{SecretData, SecretError, read_secret};

use crate::providers::{OutgoingRequest, ProviderError, Target, notifier};

/// HTTP clients kept at most (one per distinct proxy, TLS material and timeout).
const CLIENT_CACHE_LIMIT: usize = 256;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt (Flux: 4).
    pub retries: u32,
    /// Wait before the first retry; doubles per retry (Flux: 2s).
    pub min_backoff: Duration,
    /// Longest wait between retries (Flux: 30s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 4,
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Delivering to a Provider failed; messages are redacted before they reach events or logs.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(
        "provider type {0:?} is not supported by Sluice's notification-controller; use one of the supported types"
    )]
    Unsupported(String),
    #[error(
        "spec.commitStatusExpr is not supported by Sluice yet; remove it to use the default context"
    )]
    CommitStatusExpr,
    #[error("spec.timeout: {0}")]
    Timeout(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("invalid Secret data: {0}")]
    SecretData(String),
    #[error(transparent)]
    Build(#[from] ProviderError),
    #[error("building the HTTP client failed: {0}")]
    Client(String),
    #[error("the provider answered HTTP {0}; not retried")]
    Rejected(u16),
    #[error("sending failed after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
}

/// A Provider ready to send: its target, HTTP client, timeout and the values to redact.
pub struct Prepared {
    pub kind: ProviderType,
    pub target: Target,
    pub http: reqwest::Client,
    pub timeout: Duration,
    /// Secret values (tokens, passwords, addresses from Secrets, header values).
    pub secrets: Vec<String>,
}

/// Reads the Provider's Secrets and takes its HTTP client from `clients`.
pub async fn prepare(
    client: &Client,
    clients: &ClientCache,
    provider: &Provider,
) -> Result<Prepared, DeliveryError> {
    let kind = provider
        .provider_type()
        .filter(|kind| crate::providers::is_supported(*kind))
        .ok_or_else(|| DeliveryError::Unsupported(provider.spec.type_.clone()))?;
    if !provider.spec.commit_status_expr.is_empty() {
        return Err(DeliveryError::CommitStatusExpr);
    }
    let timeout = provider
        .effective_timeout()
        .map_err(|error| DeliveryError::Timeout(error.to_string()))?;
    let namespace = provider.metadata.namespace.as_deref().unwrap_or_default();
    let spec = &provider.spec;
    let mut target = Target {
        address: spec.address.clone(),
        channel: spec.channel.clone(),
        username: spec.username.clone(),
        provider_uid: provider.metadata.uid.clone().unwrap_or_default(),
        ..Target::default()
    };
    let mut secrets = Vec::new();
    let mut proxy = Some(spec.proxy.clone()).filter(|proxy| !proxy.is_empty());
    if let Some(reference) = &spec.secret_ref {
        let data = read_secret(client, namespace, &reference.name).await?;
        apply_secret(&data, &mut target, &mut proxy, &mut secrets)?;
    }
    let mut settings = ClientSettings {
        timeout,
        ..ClientSettings::default()
    };
    if let Some(reference) = &spec.proxy_secret_ref {
        let data = read_secret(client, namespace, &reference.name).await?;
        let proxy_settings = sluice_secrets::ProxySettings::from_secret(&data)?;
        secrets.extend(proxy_settings.secrets.iter().cloned());
        proxy = Some(proxy_settings.url.clone());
    }
    settings.proxy = proxy;
    if let Some(reference) = &spec.cert_secret_ref {
        let data = read_secret(client, namespace, &reference.name).await?;
        settings.ca = data
            .bytes("ca.crt")
            .or_else(|| data.bytes("caFile"))
            .map(<[u8]>::to_vec);
        let cert = data.bytes("tls.crt").or_else(|| data.bytes("certFile"));
        let key = data.bytes("tls.key").or_else(|| data.bytes("keyFile"));
        if let (Some(cert), Some(key)) = (cert, key) {
            settings.identity = Some((cert.to_vec(), key.to_vec()));
        }
    }
    let http = clients.client(&settings)?;
    Ok(Prepared {
        kind,
        target,
        http,
        timeout,
        secrets,
    })
}

fn apply_secret(
    data: &SecretData,
    target: &mut Target,
    proxy: &mut Option<String>,
    secrets: &mut Vec<String>,
) -> Result<(), DeliveryError> {
    if let Some(address) = data.text("address")?.filter(|a| !a.is_empty()) {
        secrets.push(address.clone());
        target.address = address;
    }
    if let Some(token) = data.text("token")?.filter(|t| !t.is_empty()) {
        secrets.push(token.clone());
        target.token = Some(token);
    }
    if let Some(username) = data.text("username")?.filter(|u| !u.is_empty()) {
        target.username = username;
    }
    if let Some(password) = data.text("password")?.filter(|p| !p.is_empty()) {
        secrets.push(password.clone());
        target.password = Some(password);
    }
    if let Some(address) = data.text("proxy")?.filter(|p| !p.is_empty()) {
        secrets.push(address.clone());
        *proxy = Some(address);
    }
    if let Some(headers) = data.text("headers")?.filter(|h| !h.is_empty()) {
        let parsed: BTreeMap<String, String> = serde_saphyr::from_str(&headers).map_err(|_| {
            DeliveryError::SecretData("key 'headers' is not a YAML map of strings".to_owned())
        })?;
        secrets.extend(parsed.values().cloned());
        target.headers = parsed;
    }
    Ok(())
}

/// What an HTTP client is built from: timeout, proxy URL and TLS material from the Secrets.
#[derive(Default)]
struct ClientSettings {
    timeout: Duration,
    proxy: Option<String>,
    ca: Option<Vec<u8>>,
    /// PEM certificate and key.
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientSettings {
    /// A digest of every setting, so a changed Secret gets a new client.
    fn key(&self) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(self.timeout.as_nanos().to_le_bytes());
        let empty: &[u8] = &[];
        let cert = self
            .identity
            .as_ref()
            .map(|(cert, key)| (cert.as_slice(), key.as_slice()));
        for part in [
            self.proxy.as_deref().map(str::as_bytes),
            self.ca.as_deref(),
            cert.map(|(cert, _)| cert),
            cert.map(|(_, key)| key),
        ] {
            let part = part.unwrap_or(empty);
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        }
        digest.finalize().into()
    }

    fn build(&self) -> Result<reqwest::Client, DeliveryError> {
        let invalid = |what: &str| DeliveryError::SecretData(format!("{what} is not valid PEM"));
        let mut builder = reqwest::Client::builder().timeout(self.timeout);
        if let Some(proxy) = &self.proxy {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|error| DeliveryError::Client(error.without_url().to_string()))?;
            builder = builder.proxy(proxy);
        }
        if let Some(ca) = &self.ca {
            let certificates =
                reqwest::Certificate::from_pem_bundle(ca).map_err(|_| invalid("ca.crt"))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some((cert, key)) = &self.identity {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(|_| invalid("tls.crt/tls.key"))?;
            builder = builder.identity(identity);
        }
        builder
            .build()
            .map_err(|error| DeliveryError::Client(error.without_url().to_string()))
    }
}

/// HTTP clients by their settings, so deliveries share connections and TLS setup instead of
/// building a client per event; bounded, emptied when full.
#[derive(Default)]
pub struct ClientCache(Mutex<HashMap<[u8; 32], reqwest::Client>>);

impl ClientCache {
    fn client(&self, settings: &ClientSettings) -> Result<reqwest::Client, DeliveryError> {
        let key = settings.key();
        if let Some(client) = self.lock().get(&key) {
            return Ok(client.clone());
        }
        let client = settings.build()?;
        let mut cache = self.lock();
        if cache.len() >= CLIENT_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, client.clone());
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], reqwest::Client>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds the request for `event`; `None` when the type does not report it.
pub fn build(
    prepared: &Prepared,
    event: &NotificationEvent,
) -> Result<Option<OutgoingRequest>, DeliveryError> {
    let notifier = notifier(prepared.kind)
        .ok_or_else(|| DeliveryError::Unsupported(prepared.kind.to_string()))?;
    Ok(notifier.build(&prepared.target, event)?)
}

/// Sends `request`, retrying connection failures, timeouts, 429 and 5xx with backoff.
pub async fn send(
    prepared: &Prepared,
    request: &OutgoingRequest,
    policy: RetryPolicy,
) -> Result<(), DeliveryError> {
    let mut backoff = policy.min_backoff;
    let mut last = String::new();
    for attempt in 0..=policy.retries {
        if attempt > 0 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        let mut builder = prepared
            .http
            .request(request.method.clone(), request.url.clone())
            .timeout(prepared.timeout)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        match builder.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response)
                if response.status().is_server_error() || response.status().as_u16() == 429 =>
            {
                last = format!("HTTP {}", response.status().as_u16());
            }
            Ok(response) => return Err(DeliveryError::Rejected(response.status().as_u16())),
            Err(error) => last = describe(&error),
        }
    }
    Err(DeliveryError::Exhausted {
        attempts: policy.retries + 1,
        last,
    })
}

/// A transport error without its URL (which may carry a token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_client_settings_share_one_client_and_a_changed_proxy_gets_another() {
        let cache = ClientCache::default();
        let mut settings = ClientSettings {
            timeout: Duration::from_secs(15),
            ..ClientSettings::default()
        };
        for _ in 0..3 {
            cache.client(&settings).unwrap();
        }
        assert_eq!(cache.lock().len(), 1);
        settings.proxy = Some("http://127.0.0.1:3128".to_owned());
        cache.client(&settings).unwrap();
        assert_eq!(cache.lock().len(), 2);
        settings.ca =
            Some(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec());
        let error = cache.client(&settings).unwrap_err().to_string();
        assert_eq!(error, "invalid Secret data: ca.crt is not valid PEM");
        assert_eq!(cache.lock().len(), 2);
    }
}
