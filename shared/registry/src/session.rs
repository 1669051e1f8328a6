//! One operation against one repository: the HTTP client built from [`RegistryAccess`], anonymous
//! requests first, then the registry's Bearer or Basic challenge, and status classification.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;
use sluice_secrets::{RegistryAccess, redact};

use crate::challenge::Challenge;
use crate::clients::effective_timeout;
use crate::error::chain;
use crate::tokens::{TokenCache, TokenKey};
use crate::{ImageName, RegistryError};

/// Bound on a token or error body.
const SMALL_BODY: usize = 64 * 1024;

/// Requests to one repository with the credentials, TLS settings and proxy of `access`.
pub(crate) struct Session<'a> {
    http: reqwest::Client,
    name: &'a ImageName,
    access: &'a RegistryAccess,
    base: Url,
    tokens: &'a Mutex<TokenCache>,
    key: TokenKey,
    authorization: Option<HeaderValue>,
    challenged: bool,
    secrets: Vec<String>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        name: &'a ImageName,
        access: &'a RegistryAccess,
        http: reqwest::Client,
        tokens: &'a Mutex<TokenCache>,
    ) -> Result<Self, RegistryError> {
        let scheme = if access.insecure { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/", name.registry)).map_err(|e| {
            RegistryError::InvalidImage {
                image: name.to_string(),
                reason: format!("the registry host does not form a URL: {e}"),
            }
        })?;
        let scope = format!("repository:{}:pull", name.repository);
        let mut secrets: Vec<String> = access.proxy.iter().cloned().collect();
        let proxy_password = access.proxy.as_deref().and_then(|proxy| {
            let url = Url::parse(proxy).ok()?;
            url.password().map(str::to_owned)
        });
        secrets.extend(proxy_password);
        if let Some((_, password)) = &access.auth {
            secrets.push(password.clone());
        }
        let timeout = effective_timeout(access);
        Ok(Self {
            http,
            name,
            access,
            base,
            tokens,
            key: TokenKey::new(&name.registry, &scope, access.auth.as_ref()),
            authorization: None,
            challenged: false,
            secrets,
            timeout,
        })
    }

    /// `path` (e.g. `/v2/<name>/tags/list`) on this registry.
    pub(crate) fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base
            .join(path)
            .map_err(|e| self.invalid(format!("cannot form a URL for {path}: {e}")))
    }

    pub(crate) fn invalid(&self, detail: String) -> RegistryError {
        RegistryError::InvalidResponse {
            registry: self.name.registry.clone(),
            detail: self.redact(&detail),
        }
    }

    /// Sends a request, answering one authentication challenge; any non-2xx answer is an error.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        url: Url,
        accept: &str,
        what: &str,
    ) -> Result<Response, RegistryError> {
        if self.authorization.is_none() {
            let cached = self.lock_tokens().get(&self.key, Instant::now());
            self.authorization = cached.and_then(|token| self.bearer(&token).ok());
        }
        let response = self.request(method.clone(), url.clone(), accept).await?;
        if response.status() != StatusCode::UNAUTHORIZED || self.challenged {
            return self.check(response, what).await;
        }
        self.lock_tokens().remove(&self.key);
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .and_then(Challenge::parse);
        self.answer(challenge).await?;
        let response = self.request(method, url, accept).await?;
        self.check(response, what).await
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        accept: &str,
    ) -> Result<Response, RegistryError> {
        tracing::debug!(
            registry = %self.name.registry,
            %method,
            path = url.path(),
            "registry request"
        );
        let mut request = self.http.request(method, url).header(ACCEPT, accept);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request.send().await.map_err(|e| self.transport_error(&e))
    }

    async fn answer(&mut self, challenge: Option<Challenge>) -> Result<(), RegistryError> {
        self.challenged = true;
        match challenge {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let token = self
                    .fetch_token(&realm, service.as_deref(), scope.as_deref())
                    .await?;
                self.authorization = Some(self.bearer(&token)?);
                Ok(())
            }
            Some(Challenge::Basic) => {
                let Some((username, password)) = &self.access.auth else {
                    return Err(
                        self.auth_failed("the registry requires credentials and none were given")
                    );
                };
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                self.secrets.push(encoded.clone());
                self.authorization = Some(sensitive(&format!("Basic {encoded}"))?);
                Ok(())
            }
            None => {
                Err(self
                    .auth_failed("the registry answered 401 without a Bearer or Basic challenge"))
            }
        }
    }

    async fn fetch_token(
        &mut self,
        realm: &str,
        service: Option<&str>,
        challenge_scope: Option<&str>,
    ) -> Result<String, RegistryError> {
        let mut url = Url::parse(realm)
            .map_err(|_| self.invalid(format!("the token realm '{realm}' is not a URL")))?;
        let plain = url.scheme() == "http";
        if !plain && url.scheme() != "https" {
            return Err(self.invalid(format!("the token realm '{realm}' is not HTTP(S)")));
        }
        if plain && !self.access.insecure && self.access.auth.is_some() {
            return Err(self.auth_failed(&format!(
                "the token service {realm} is plain HTTP; credentials are only sent to it for an insecure registry"
            )));
        }
        let scope = format!("repository:{}:pull", self.name.repository);
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope);
            if let Some(extra) = challenge_scope.filter(|extra| *extra != scope) {
                query.append_pair("scope", extra);
            }
        }
        let mut request = self.http.get(url);
        if let Some((username, password)) = &self.access.auth {
            request = request.basic_auth(username, Some(password));
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.auth_failed(&format!("the token service {realm} answered {status}")));
        }
        let response = self
            .check(response, &format!("the token service {realm}"))
            .await?;
        let body = self.body(response, SMALL_BODY).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            self.invalid(format!("the token service {realm} sent invalid JSON: {e}"))
        })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| self.invalid(format!("the token service {realm} sent no token")))?;
        self.secrets.push(token.clone());
        let expires_in = parsed.expires_in.map(Duration::from_secs);
        self.lock_tokens()
            .insert(self.key.clone(), token.clone(), expires_in, Instant::now());
        tracing::debug!(
            registry = %self.name.registry,
            %scope,
            ?expires_in,
            "obtained a registry token"
        );
        Ok(token)
    }

    /// `response` if 2xx, else the error its status stands for.
    async fn check(&self, response: Response, what: &str) -> Result<Response, RegistryError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = match self.body(response, SMALL_BODY).await {
            Ok(body) => self.redact(&error_detail(&body, status)),
            Err(_) => format!("HTTP {status}"),
        };
        let registry = self.name.registry.clone();
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.auth_failed(&format!("{what}: {detail}"))
            }
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry,
                what: what.to_owned(),
                detail,
            },
            _ => RegistryError::Status {
                registry,
                what: what.to_owned(),
                status: status.as_u16(),
                detail,
            },
        })
    }

    /// Reads at most `limit` bytes of body; a longer body is an error, not a truncation.
    pub(crate) async fn body(
        &self,
        mut response: Response,
        limit: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let too_large = || self.invalid(format!("a response is larger than {limit} bytes"));
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The next chunk of `response`'s body; `None` at its end.
    pub(crate) async fn chunk(
        &self,
        response: &mut Response,
    ) -> Result<Option<bytes::Bytes>, RegistryError> {
        response.chunk().await.map_err(|e| self.transport_error(&e))
    }

    fn bearer(&mut self, token: &str) -> Result<HeaderValue, RegistryError> {
        self.secrets.push(token.to_owned());
        sensitive(&format!("Bearer {token}"))
            .map_err(|_| self.invalid("the token is not a valid header value".into()))
    }

    fn auth_failed(&self, detail: &str) -> RegistryError {
        RegistryError::AuthenticationFailed {
            registry: self.name.registry.clone(),
            detail: self.redact(detail),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> RegistryError {
        let registry = self.name.registry.clone();
        if error.is_timeout() {
            return RegistryError::Timeout {
                registry,
                timeout: self.timeout,
            };
        }
        let detail = self.redact(&chain(error));
        let lower = detail.to_ascii_lowercase();
        if ["certificate", "handshake", "alert"]
            .iter()
            .any(|word| lower.contains(word))
        {
            RegistryError::Tls { registry, detail }
        } else if error.is_body() || error.is_decode() {
            RegistryError::InvalidResponse { registry, detail }
        } else {
            RegistryError::Unreachable { registry, detail }
        }
    }

    fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        RegistryError::Config("the credentials contain characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The status and the registry's `errors[].code`s (distribution error format). Messages and other
/// body text stay out: whatever the URL reached wrote them, and they end up in status.
fn error_detail(body: &[u8], status: StatusCode) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
    }
    let codes = serde_json::from_slice::<Errors>(body)
        .map(|parsed| {
            parsed
                .errors
                .iter()
                .map(|e| e.code.as_str())
                .filter(|code| is_error_code(code))
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    if codes.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} ({codes})")
    }
}

/// A distribution error code such as `MANIFEST_UNKNOWN`: upper-case letters and `_`, short.
fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 40
        && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_keep_codes_and_drop_messages() {
        let body = br#"{"errors":[{"code":"DENIED","message":"token=hunter2"},{"code":"a secret value"}]}"#;
        let detail = error_detail(body, StatusCode::FORBIDDEN);
        assert_eq!(detail, "HTTP 403 Forbidden (DENIED)");
        let html = error_detail(
            b"<html>internal token=hunter2</html>",
            StatusCode::NOT_FOUND,
        );
        assert_eq!(html, "HTTP 404 Not Found");
    }
}
