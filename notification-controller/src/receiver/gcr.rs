//! `gcr` receivers: the Pub/Sub push's `Authorization: Bearer` ID token, an RS256 JWT signed by
//! Google, checked against Google's published keys, issuer, the Secret's `audience` and `email`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::verify::Rejection;

/// Where Google publishes the keys that sign its ID tokens (JWKS).
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// Issuers Google ID tokens carry.
const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// How long fetched keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(3600);
/// Timeout of one key fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp` and `iat`.
const SKEW_SECONDS: u64 = 60;
/// Most keys kept from one JWKS document.
const MAX_KEYS: usize = 32;

/// RSA keys by key id.
type Keys = HashMap<String, (Vec<u8>, Vec<u8>)>;

/// Verifies Google ID tokens; keys are fetched on first use and cached for an hour.
pub struct GoogleTokens {
    http: reqwest::Client,
    certs_url: String,
    keys: Mutex<Option<(Instant, Arc<Keys>)>>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: String,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    aud: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    iat: u64,
}

fn denied(message: &str) -> Rejection {
    Rejection::Unauthenticated(format!("cannot authenticate GCR request: {message}"))
}

impl GoogleTokens {
    /// A verifier fetching keys from `certs_url` ([`GOOGLE_CERTS_URL`] in production).
    pub fn new(certs_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            http,
            certs_url: certs_url.to_owned(),
            keys: Mutex::new(None),
        }
    }

    /// Checks `authorization` (`Bearer <JWT>`) for a token Google issued to `email` for `audience`.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        email: &str,
        audience: &str,
    ) -> Result<(), Rejection> {
        if email.is_empty() || audience.is_empty() {
            return Err(denied("the Secret needs the keys 'email' and 'audience'"));
        }
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| denied("the Authorization header is missing or not a Bearer token"))?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(denied("the bearer token is not a JWT"));
        };
        let header: Header = decode_part(header)?;
        if header.alg != "RS256" {
            return Err(denied("the token is not signed with RS256"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| denied("the token signature is not base64url"))?;
        let signed = &token.as_bytes()[..token.len() - signature_len(token)];
        let keys = self.keys().await?;
        let (n, e) = keys
            .get(&header.kid)
            .ok_or_else(|| denied("the token's key id is not among Google's keys"))?;
        RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .map_err(|_| denied("the token signature is invalid"))?;
        check_claims(&decode_part(payload)?, email, audience)
    }

    async fn keys(&self) -> Result<Arc<Keys>, Rejection> {
        let mut cached = self.keys.lock().await;
        if let Some((fetched, keys)) = cached.as_ref()
            && fetched.elapsed() < KEYS_TTL
        {
            return Ok(keys.clone());
        }
        let fetch_failed = |_| denied("fetching Google's token keys failed");
        let jwks: Jwks = self
            .http
            .get(&self.certs_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fetch_failed)?
            .json()
            .await
            .map_err(fetch_failed)?;
        let keys: Keys = jwks
            .keys
            .into_iter()
            .filter(|key| key.kty == "RSA")
            .take(MAX_KEYS)
            .filter_map(|key| {
                let n = URL_SAFE_NO_PAD.decode(&key.n).ok()?;
                let e = URL_SAFE_NO_PAD.decode(&key.e).ok()?;
                Some((key.kid, (n, e)))
            })
            .collect();
        let keys = Arc::new(keys);
        *cached = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}

/// Bytes of `.signature` at the end of a JWT, dot included.
fn signature_len(token: &str) -> usize {
    token.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| denied("a token part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| denied("a token part is not the expected JSON"))
}

fn check_claims(claims: &Claims, email: &str, audience: &str) -> Result<(), Rejection> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    if !GOOGLE_ISSUERS.contains(&claims.iss.as_str()) {
        return Err(denied("the token was not issued by Google"));
    }
    if claims.exp + SKEW_SECONDS < now || claims.iat > now + SKEW_SECONDS {
        return Err(denied("the token is expired or not yet valid"));
    }
    if claims.aud != audience {
        return Err(denied(
            "the token audience does not match the Secret's 'audience'",
        ));
    }
    if claims.email != email || !claims.email_verified {
        return Err(denied(
            "the token email does not match the Secret's 'email'",
        ));
    }
    Ok(())
}
