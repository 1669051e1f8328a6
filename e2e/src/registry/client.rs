//! A small OCI distribution API client that pushes and pulls Flux-style artifacts with reqwest,
//! over HTTP or HTTPS (test CA, optional client certificate), anonymous, basic or bearer auth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::token::TokenIssuer;
use crate::tarball::tar_gz;
use crate::tls::CertPair;
use crate::{Error, Result};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Config media type of a Flux artifact.
pub const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
/// Layer media type of a Flux artifact.
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Annotation keys Flux sets on artifacts.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `sha256:<hex>` of `data`.
pub use sluice_artifact::digest::sha256_bytes as sha256_digest;

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    fn of(media_type: &str, data: &[u8]) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: sha256_digest(data),
            size: data.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Flux-style artifact to push: one tar+gzip layer, an empty `{}` config and three annotations.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The tar+gzip layer.
    pub content: Vec<u8>,
    /// `org.opencontainers.image.created` (RFC 3339).
    pub created: String,
    /// `org.opencontainers.image.source`, e.g. a git URL.
    pub source: String,
    /// `org.opencontainers.image.revision`, e.g. `main@sha1:<sha>`.
    pub revision: String,
}

impl Artifact {
    /// An artifact whose layer is [`tar_gz`] of `files`, created at a fixed time.
    pub fn from_files<K, V>(
        files: impl IntoIterator<Item = (K, V)>,
        source: &str,
        revision: &str,
    ) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        Ok(Self {
            content: tar_gz(files)?,
            created: "2026-01-01T00:00:00Z".to_string(),
            source: source.to_string(),
            revision: revision.to_string(),
        })
    }
}

/// Digests of a pushed artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedArtifact {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
}

/// A manifest as served: raw bytes, content type and `Docker-Content-Digest`.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// A pulled artifact: its manifest (raw and parsed) and the first layer's bytes.
#[derive(Clone, Debug)]
pub struct PulledArtifact {
    pub manifest: FetchedManifest,
    pub parsed: Manifest,
    pub layer: Vec<u8>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// How an [`OciClient`] authenticates.
#[derive(Clone)]
pub enum ClientAuth {
    Anonymous,
    Basic(String, String),
    /// Push-and-pull tokens minted by the registry's [`TokenIssuer`] for each repository.
    Token(Arc<TokenIssuer>),
}

/// What a client needs for an HTTPS registry: the test CA and, for mTLS, a client certificate.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub ca_pem: String,
    pub identity: Option<CertPair>,
}

/// A minimal OCI distribution API client over HTTP or HTTPS.
#[derive(Clone)]
pub struct OciClient {
    http: reqwest::Client,
    base: Url,
    auth: ClientAuth,
}

fn client_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Setup(format!("registry client: {what} failed: {e}"))
}

impl OciClient {
    /// A client for the plain-HTTP registry at `base_url` (e.g. `http://127.0.0.1:5000`).
    pub fn new(base_url: &str, credentials: Option<(&str, &str)>) -> Result<Self> {
        let auth = match credentials {
            Some((username, password)) => ClientAuth::Basic(username.into(), password.into()),
            None => ClientAuth::Anonymous,
        };
        Self::configured(base_url, auth, None)
    }

    /// A client for `base_url` with `auth` and, for HTTPS, `tls`.
    pub fn configured(base_url: &str, auth: ClientAuth, tls: Option<&ClientTls>) -> Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(tls) = tls {
            let ca = reqwest::Certificate::from_pem(tls.ca_pem.as_bytes())
                .map_err(|e| client_error("reading the test CA", e))?;
            builder = builder.tls_certs_merge([ca]);
            if let Some(pair) = &tls.identity {
                let pem = format!("{}{}", pair.cert_pem, pair.key_pem);
                let identity = reqwest::Identity::from_pem(pem.as_bytes())
                    .map_err(|e| client_error("reading the client certificate", e))?;
                builder = builder.identity(identity);
            }
        }
        let http = builder
            .build()
            .map_err(|e| client_error("building the HTTP client", e))?;
        let base =
            Url::parse(base_url).map_err(|e| client_error(&format!("parsing {base_url}"), e))?;
        Ok(Self { http, base, auth })
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| client_error(&format!("joining {path}"), e))
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let what = format!("{method} {url}");
        let repository = repository_of(url.path()).to_owned();
        let mut request = self.http.request(method, url);
        match &self.auth {
            ClientAuth::Anonymous => {}
            ClientAuth::Basic(username, password) => {
                request = request.basic_auth(username, Some(password));
            }
            ClientAuth::Token(issuer) => {
                request = request.bearer_auth(issuer.mint(&repository, &["pull", "push"])?);
            }
        }
        build(request)
            .send()
            .await
            .map_err(|e| client_error(&what, e))
    }

    async fn expect(
        response: reqwest::Response,
        ok: &[StatusCode],
        what: &str,
    ) -> Result<reqwest::Response> {
        if ok.contains(&response.status()) {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(Error::Setup(format!(
            "registry client: {what} returned HTTP {status}: {}",
            body.trim()
        )))
    }

    /// Whether the blob `digest` exists in `repo`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let response = self
            .send(
                Method::HEAD,
                self.url(&format!("/v2/{repo}/blobs/{digest}"))?,
                |r| r,
            )
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Self::expect(response, &[], &format!("HEAD blob {digest} in {repo}"))
                .await
                .map(|_| false),
        }
    }

    /// Uploads `data` as one blob (monolithic POST + PUT) unless present; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Result<String> {
        let digest = sha256_digest(data);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let what = format!("starting a blob upload to {repo}");
        let started = self
            .send(
                Method::POST,
                self.url(&format!("/v2/{repo}/blobs/uploads/"))?,
                |r| r,
            )
            .await?;
        let started = Self::expect(started, &[StatusCode::ACCEPTED], &what).await?;
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| client_error(&what, "no Location header in the 202 response"))?;
        let mut upload = self.url(location)?;
        upload.query_pairs_mut().append_pair("digest", &digest);
        let body = data.to_vec();
        let put = self
            .send(Method::PUT, upload, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .body(body)
            })
            .await?;
        Self::expect(
            put,
            &[StatusCode::CREATED],
            &format!("uploading blob {digest} to {repo}"),
        )
        .await?;
        Ok(digest)
    }

    /// Downloads blob `digest` from `repo` and checks its digest.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        let what = format!("GET blob {digest} from {repo}");
        let response = self
            .send(
                Method::GET,
                self.url(&format!("/v2/{repo}/blobs/{digest}"))?,
                |r| r,
            )
            .await?;
        let response = Self::expect(response, &[StatusCode::OK], &what).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| client_error(&what, e))?
            .to_vec();
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(client_error(&what, format!("content has digest {actual}")));
        }
        Ok(bytes)
    }

    /// Uploads a manifest under `reference` (tag or digest); returns the registry's digest for it.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let what = format!("PUT manifest {repo}:{reference}");
        let body = bytes.to_vec();
        let response = self
            .send(
                Method::PUT,
                self.url(&format!("/v2/{repo}/manifests/{reference}"))?,
                |r| r.header(CONTENT_TYPE, media_type).body(body),
            )
            .await?;
        let response = Self::expect(response, &[StatusCode::CREATED], &what).await?;
        Ok(docker_digest(&response).unwrap_or_else(|| sha256_digest(bytes)))
    }

    /// Downloads the manifest `reference` (tag or digest) and checks its digest.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let what = format!("GET manifest {repo}:{reference}");
        let response = self
            .send(
                Method::GET,
                self.url(&format!("/v2/{repo}/manifests/{reference}"))?,
                |r| r.header(ACCEPT, OCI_MANIFEST),
            )
            .await?;
        let response = Self::expect(response, &[StatusCode::OK], &what).await?;
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let served = docker_digest(&response);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| client_error(&what, e))?
            .to_vec();
        let digest = sha256_digest(&bytes);
        if served.as_ref().is_some_and(|d| *d != digest) {
            return Err(client_error(
                &what,
                format!("served digest {served:?} but content has {digest}"),
            ));
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest of manifest `reference`, or `None` when it does not exist (HEAD request).
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<String>> {
        let what = format!("HEAD manifest {repo}:{reference}");
        let response = self
            .send(
                Method::HEAD,
                self.url(&format!("/v2/{repo}/manifests/{reference}"))?,
                |r| r.header(ACCEPT, OCI_MANIFEST),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = Self::expect(response, &[StatusCode::OK], &what).await?;
        docker_digest(&response)
            .map(Some)
            .ok_or_else(|| client_error(&what, "no Docker-Content-Digest header"))
    }

    /// The tags of `repo` (`GET /v2/<repo>/tags/list`).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let what = format!("GET tags of {repo}");
        let response = self
            .send(
                Method::GET,
                self.url(&format!("/v2/{repo}/tags/list"))?,
                |r| r,
            )
            .await?;
        let response = Self::expect(response, &[StatusCode::OK], &what).await?;
        let list: TagList = response.json().await.map_err(|e| client_error(&what, e))?;
        Ok(list.tags.unwrap_or_default())
    }

    /// Pushes `artifact` as `repo:tag` the way `flux push artifact` lays it out.
    pub async fn push_artifact(
        &self,
        repo: &str,
        tag: &str,
        artifact: &Artifact,
    ) -> Result<PushedArtifact> {
        let config = b"{}";
        let config_digest = self.push_blob(repo, config).await?;
        let layer_digest = self.push_blob(repo, &artifact.content).await?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: OCI_MANIFEST.to_string(),
            config: Descriptor::of(FLUX_CONFIG, config),
            layers: vec![Descriptor::of(FLUX_CONTENT, &artifact.content)],
            annotations: BTreeMap::from([
                (ANNOTATION_CREATED.to_string(), artifact.created.clone()),
                (ANNOTATION_SOURCE.to_string(), artifact.source.clone()),
                (ANNOTATION_REVISION.to_string(), artifact.revision.clone()),
            ]),
        };
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| client_error("encoding the manifest", e))?;
        let manifest_digest = self.put_manifest(repo, tag, OCI_MANIFEST, &bytes).await?;
        Ok(PushedArtifact {
            manifest_digest,
            config_digest,
            layer_digest,
        })
    }

    /// Pulls `repo:reference`: the manifest and its first layer, both digest-checked.
    pub async fn pull_artifact(&self, repo: &str, reference: &str) -> Result<PulledArtifact> {
        let manifest = self.get_manifest(repo, reference).await?;
        let parsed: Manifest = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| client_error(&format!("parsing manifest {repo}:{reference}"), e))?;
        let first = parsed.layers.first().ok_or_else(|| {
            client_error(
                &format!("pulling {repo}:{reference}"),
                "the manifest has no layers",
            )
        })?;
        let layer = self.get_blob(repo, &first.digest).await?;
        Ok(PulledArtifact {
            manifest,
            parsed,
            layer,
        })
    }
}

fn docker_digest(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The repository in a `/v2/<repository>/(blobs|manifests|tags)/…` path.
fn repository_of(path: &str) -> &str {
    let rest = path.strip_prefix("/v2/").unwrap_or(path);
    ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|marker| rest.rfind(marker))
        .min()
        .map_or(rest, |end| &rest[..end])
}
