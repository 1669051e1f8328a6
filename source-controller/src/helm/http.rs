//! HTTP(S) access to a Helm chart repository: basic auth, a CA bundle and client certificate,
//! a timeout on every request and a size cap on every body.

use std::time::Duration;

use reqwest::Url;

/// Fetching from a chart repository failed.
#[derive(Debug, thiserror::Error)]
pub enum HelmHttpError {
    #[error("invalid URL '{url}': {message}")]
    InvalidUrl { url: String, message: String },
    #[error("{0}")]
    Config(String),
    #[error("GET {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("GET {url} returned HTTP {status}; check the URL and credentials")]
    Status { url: String, status: u16 },
    #[error("GET {url}: the body exceeds {limit} bytes; raise {flag}")]
    TooLarge {
        url: String,
        limit: u64,
        flag: &'static str,
    },
}

/// Settings of a repository client, from a HelmRepository spec and its Secrets.
#[derive(Clone, Default)]
pub struct HelmHttpSettings {
    /// `username` and `password` from `secretRef`.
    pub basic_auth: Option<(String, String)>,
    /// PEM CA bundle trusted besides the system roots.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate followed by its key.
    pub client_identity: Option<Vec<u8>>,
    /// Bound on each request.
    pub timeout: Duration,
    /// `passCredentials`: send basic auth to hosts other than the repository's.
    pub pass_credentials: bool,
}

/// A client for one chart repository.
pub struct HelmHttpClient {
    http: reqwest::Client,
    base: Url,
    settings: HelmHttpSettings,
}

impl HelmHttpClient {
    /// A client for the repository at `url` (`http://` or `https://`).
    pub fn new(url: &str, settings: HelmHttpSettings) -> Result<Self, HelmHttpError> {
        let invalid = |message: &str| HelmHttpError::InvalidUrl {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let base = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        let http = build_client(&settings)?;
        Ok(Self {
            http,
            base,
            settings,
        })
    }

    /// The address of `index.yaml` under the repository URL.
    pub fn index_url(&self) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}/index.yaml", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }

    /// Resolves a chart URL from an index entry against the repository URL.
    pub fn resolve(&self, reference: &str) -> Result<Url, HelmHttpError> {
        let mut base = self.base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.join(reference).map_err(|e| HelmHttpError::InvalidUrl {
            url: reference.to_owned(),
            message: e.to_string(),
        })
    }

    /// GETs `url` into memory, refusing bodies over `limit` bytes (named by `flag`).
    /// Credentials go to the repository's host, and to others only with `passCredentials`.
    pub async fn get(
        &self,
        url: &Url,
        limit: u64,
        flag: &'static str,
    ) -> Result<Vec<u8>, HelmHttpError> {
        let shown = display_url(url);
        let mut request = self.http.get(url.clone());
        if let Some((username, password)) = &self.settings.basic_auth
            && (self.settings.pass_credentials || same_origin(url, &self.base))
        {
            request = request.basic_auth(username, Some(password));
        }
        let failed = |e: reqwest::Error| HelmHttpError::Request {
            url: shown.clone(),
            message: describe(&e),
        };
        let mut response = request.send().await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(HelmHttpError::Status {
                url: shown,
                status: response.status().as_u16(),
            });
        }
        let too_large = || HelmHttpError::TooLarge {
            url: shown.clone(),
            limit,
            flag,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The URL without user info, query or fragment, for messages.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn build_client(settings: &HelmHttpSettings) -> Result<reqwest::Client, HelmHttpError> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!(
            "sluice-source-controller/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(ca) = &settings.ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                HelmHttpError::Config(
                    "the CA bundle (ca.crt) holds no valid PEM certificate".into(),
                )
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(identity) = &settings.client_identity {
        let identity = reqwest::Identity::from_pem(identity).map_err(|_| {
            HelmHttpError::Config(
                "the client certificate and key (tls.crt, tls.key) are not a valid PEM pair".into(),
            )
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| {
        HelmHttpError::Config(format!("cannot build the HTTP client: {}", describe(&e)))
    })
}

/// The error and its causes, without the URL.
fn describe(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_timeout() {
        "the request timed out; raise spec.timeout or check the server"
    } else if error.is_connect() {
        "connecting failed"
    } else {
        "the request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> HelmHttpClient {
        HelmHttpClient::new(
            url,
            HelmHttpSettings {
                timeout: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn index_and_chart_urls() {
        let repo = client("https://charts.example.com/stable");
        assert_eq!(
            repo.index_url().as_str(),
            "https://charts.example.com/stable/index.yaml"
        );
        assert_eq!(
            repo.resolve("podinfo-1.0.0.tgz").unwrap().as_str(),
            "https://charts.example.com/stable/podinfo-1.0.0.tgz"
        );
        assert_eq!(
            repo.resolve("https://cdn.example.com/p.tgz")
                .unwrap()
                .as_str(),
            "https://cdn.example.com/p.tgz"
        );
        let root = client("http://127.0.0.1:8080/");
        assert_eq!(
            root.index_url().as_str(),
            "http://127.0.0.1:8080/index.yaml"
        );
    }

    #[test]
    fn refuses_other_schemes() {
        let settings = HelmHttpSettings::default();
        assert!(HelmHttpClient::new("oci://ghcr.io/charts", settings.clone()).is_err());
        assert!(HelmHttpClient::new("not a url", settings).is_err());
    }

    #[test]
    fn credentials_stay_on_the_repository_origin() {
        let base = Url::parse("https://charts.example.com/stable").unwrap();
        let same = Url::parse("https://charts.example.com:443/x.tgz").unwrap();
        let other = Url::parse("https://cdn.example.com/x.tgz").unwrap();
        assert!(same_origin(&same, &base));
        assert!(!same_origin(&other, &base));
    }
}
