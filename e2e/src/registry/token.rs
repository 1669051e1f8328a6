//! A Docker token service for the registry's `auth: token` mode: `GET /token` with basic
//! credentials answers `{"token", "expires_in"}`, a JWT signed by a key whose certificate the test
//! CA issued, which the registry checks against its `rootcertbundle`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{KeyPair, SigningKey};
use reqwest::Url;
use serde_json::json;

use crate::net::{BackgroundRuntime, bind_loopback};
use crate::tls::TestCa;
use crate::{Error, Result};

/// The `service` the registry expects as the tokens' audience.
pub const TOKEN_SERVICE: &str = "sluice-e2e-registry";
/// The `iss` of every token.
pub const TOKEN_ISSUER: &str = "sluice-e2e-token-issuer";
/// Lifetime of issued tokens, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 300;

struct Signer {
    key: KeyPair,
    cert_der: Vec<u8>,
    credentials: (String, String),
    served: AtomicUsize,
}

/// A running token service on `127.0.0.1`; stopped on drop.
pub struct TokenIssuer {
    _runtime: BackgroundRuntime,
    signer: Arc<Signer>,
    port: u16,
}

impl TokenIssuer {
    /// Starts a token service accepting `username`/`password`, signing with a key `ca` certifies.
    pub fn start(ca: &TestCa, username: &str, password: &str) -> Result<Self> {
        let (key, cert_der) = ca.token_signer(TOKEN_ISSUER)?;
        let signer = Arc::new(Signer {
            key,
            cert_der,
            credentials: (username.to_owned(), password.to_owned()),
            served: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-token-issuer")
            .enable_all()
            .build()
            .map_err(|e| Error::Setup(format!("cannot start the token service's runtime: {e}")))?;
        let runtime = BackgroundRuntime(Some(runtime));
        let (listener, addr) = bind_loopback(runtime.handle()?)?;
        let app = Router::new()
            .route("/token", axum::routing::get(issue))
            .with_state(signer.clone());
        runtime.handle()?.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            _runtime: runtime,
            signer,
            port: addr.port(),
        })
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The username and password the service accepts.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.signer.credentials.0, &self.signer.credentials.1)
    }

    /// How many tokens the service has handed out over HTTP.
    pub fn served(&self) -> usize {
        self.signer.served.load(Ordering::SeqCst)
    }

    /// A token for `actions` (e.g. `["pull", "push"]`) on `repository`, minted without HTTP.
    pub fn mint(&self, repository: &str, actions: &[&str]) -> Result<String> {
        self.signer
            .token(&[(repository.to_owned(), actions.join(","))])
    }
}

impl Signer {
    /// A JWT granting `(repository, actions)` pairs, with the signer's certificate in `x5c`.
    fn token(&self, grants: &[(String, String)]) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::Setup(format!("the clock is before 1970: {e}")))?
            .as_secs();
        let access: Vec<_> = grants
            .iter()
            .map(|(name, actions)| {
                let actions: Vec<&str> = actions.split(',').collect();
                json!({"type": "repository", "name": name, "actions": actions})
            })
            .collect();
        let header =
            json!({"typ": "JWT", "alg": "EdDSA", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": TOKEN_ISSUER, "sub": self.credentials.0, "aud": TOKEN_SERVICE,
            "exp": now + TOKEN_LIFETIME_SECS, "nbf": now, "iat": now,
            "jti": format!("{now}-{}", self.served.load(Ordering::SeqCst)), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(signing_input.as_bytes())
            .map_err(|e| Error::Setup(format!("signing a registry token failed: {e}")))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = STANDARD.encode(format!("{}:{}", self.credentials.0, self.credentials.1));
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic "))
            .is_some_and(|given| given == expected)
    }
}

/// `GET /token?service=…&scope=repository:<name>:<actions>`: pull grants for every scope.
async fn issue(
    State(signer): State<Arc<Signer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !signer.authorized(&headers) {
        let error = json!({"code": "UNAUTHORIZED", "message": "invalid username or password"});
        let body = json!({ "errors": [error] });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let url = Url::parse(&format!("http://token/?{}", query.unwrap_or_default()));
    let grants: Vec<(String, String)> = url
        .iter()
        .flat_map(|url| url.query_pairs().into_owned().collect::<Vec<_>>())
        .filter(|(key, _)| key == "scope")
        .filter_map(|(_, scope)| {
            let name = scope.strip_prefix("repository:")?.rsplit_once(':')?.0;
            Some((name.to_owned(), "pull".to_owned()))
        })
        .collect();
    match signer.token(&grants) {
        Ok(token) => {
            signer.served.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"token": token, "expires_in": TOKEN_LIFETIME_SECS})).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
