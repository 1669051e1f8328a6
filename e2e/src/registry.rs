//! The CNCF distribution registry on 127.0.0.1 (plain HTTP, optional htpasswd basic auth) and a
//! small OCI distribution API client that pushes and pulls Flux-style artifacts with reqwest.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::process::Supervised;
use crate::tarball::tar_gz;
use crate::{Error, Result, net, tools};

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

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the registry keeps blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// In memory; gone when the registry stops.
    #[default]
    InMemory,
    /// A per-run directory on disk.
    Filesystem,
}

/// Configures a [`Registry`].
#[derive(Default)]
pub struct RegistryBuilder {
    credentials: Option<(String, String)>,
    storage: Storage,
}

impl RegistryBuilder {
    /// Require htpasswd basic auth (bcrypt) for every request.
    pub fn basic_auth(mut self, username: &str, password: &str) -> Self {
        self.credentials = Some((username.to_string(), password.to_string()));
        self
    }

    /// Choose the storage driver.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Builds the registry binary if needed, starts it and waits until `GET /v2/` answers.
    pub fn start(self) -> Result<Registry> {
        Registry::launch(self)
    }
}

/// A running distribution registry on `127.0.0.1:PORT`; stopped on drop.
pub struct Registry {
    process: Supervised,
    port: u16,
    credentials: Option<(String, String)>,
    _dir: TempDir,
}

impl Registry {
    /// A builder; `Registry::builder().start()` gives an anonymous in-memory registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    fn launch(options: RegistryBuilder) -> Result<Self> {
        let binary = tools::binary("registry")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-registry-")
            .tempdir()?;
        let port = net::free_port()?;
        let storage = match options.storage {
            Storage::InMemory => "  inmemory: {}\n".to_string(),
            Storage::Filesystem => {
                let root = dir.path().join("storage");
                std::fs::create_dir_all(&root)?;
                format!(
                    "  filesystem:\n    rootdirectory: {}\n",
                    yaml_string(&root.display().to_string())
                )
            }
        };
        let auth = match &options.credentials {
            None => String::new(),
            Some((username, password)) => {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, htpasswd_line(username, password)?)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: sluice-e2e\n    path: {}\n",
                    yaml_string(&file.display().to_string())
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n{storage}  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: sluice-e2e-secret\n\
             health:\n  storagedriver:\n    enabled: false\n{auth}"
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let args = vec!["serve".to_string(), config_path.display().to_string()];
        let envs = vec![("OTEL_TRACES_EXPORTER".to_string(), "none".to_string())];
        let mut process = Supervised::spawn(
            "registry",
            &binary,
            &args,
            &envs,
            &dir.path().join("registry.log"),
            None,
        )?;
        let expected = if options.credentials.is_some() {
            401
        } else {
            200
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if probe_v2(port) == Some(expected) {
                break;
            }
            if Instant::now() > deadline || !process.is_running() {
                return Err(Error::NotReady {
                    what: format!("registry ({})", binary.display()),
                    seconds: READY_TIMEOUT.as_secs(),
                    log: process.log_tail(4000),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            process,
            port,
            credentials: options.credentials,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`, the registry host in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:PORT/<repo>`, as a Flux `OCIRepository` URL (needs `insecure: true`).
    pub fn oci_url(&self, repo: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo}", self.port)
    }

    /// The username and password when started with basic auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// A client using this registry's credentials, if any.
    pub fn client(&self) -> Result<OciClient> {
        OciClient::new(&self.url(), self.credentials())
    }

    /// A client sending no credentials.
    pub fn anonymous_client(&self) -> Result<OciClient> {
        OciClient::new(&self.url(), None)
    }

    /// The last `max_bytes` of the registry's log.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.process.log_tail(max_bytes)
    }
}

/// The HTTP status of `GET /v2/`, or `None` when nothing answers yet.
fn probe_v2(port: u16) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request =
        format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]).into_owned();
    line.split_whitespace().nth(1)?.parse().ok()
}

fn yaml_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One htpasswd line with a bcrypt (`$2y$`) hash, as the registry's htpasswd auth expects.
pub fn htpasswd_line(username: &str, password: &str) -> Result<String> {
    let hash = bcrypt::hash_with_result(password, 5).map_err(|e| {
        Error::Setup(format!(
            "bcrypt hashing of the registry password failed: {e}"
        ))
    })?;
    Ok(format!(
        "{username}:{}\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    ))
}

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

/// A minimal OCI distribution API client over plain HTTP with optional basic auth.
#[derive(Clone)]
pub struct OciClient {
    http: reqwest::Client,
    base: Url,
    credentials: Option<(String, String)>,
}

fn client_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Setup(format!("registry client: {what} failed: {e}"))
}

impl OciClient {
    /// A client for the registry at `base_url` (e.g. `http://127.0.0.1:5000`).
    pub fn new(base_url: &str, credentials: Option<(&str, &str)>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| client_error("building the HTTP client", e))?;
        let base =
            Url::parse(base_url).map_err(|e| client_error(&format!("parsing {base_url}"), e))?;
        Ok(Self {
            http,
            base,
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
        })
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
        let mut request = self.http.request(method, url);
        if let Some((username, password)) = &self.credentials {
            request = request.basic_auth(username, Some(password));
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
