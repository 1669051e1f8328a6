//! OCI registry access with oci-client: reference resolution (tag, SemVer, digest) with one
//! manifest HEAD, and download of the selected layer with a size bound.

use std::collections::BTreeMap;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use regex::Regex;
use sluice_api::source::OCIRepositoryRef;

use sluice_git::parse_tag_version;
use sluice_secrets::{RegistryAccess, SecretError};

/// Tag pulled when `spec.ref` is unset.
pub const DEFAULT_TAG: &str = "latest";
/// Tags requested per page when listing for SemVer.
const TAGS_PAGE: usize = 1000;
/// Most tag pages listed for one SemVer resolution.
const MAX_TAG_PAGES: usize = 100;
/// Longest registry-supplied text (an error envelope) kept in a message.
const MAX_REMOTE_TEXT: usize = 200;

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("{0}")]
    Authentication(String),
    #[error("{0}")]
    Pull(String),
    #[error(
        "registry operation timed out after {0:?}; raise spec.timeout or check the registry is reachable"
    )]
    Timeout(Duration),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// `oci://host[:port]/repo` split into registry and repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub registry: String,
    pub repository: String,
}

impl Repository {
    /// Parses `spec.url`, refusing tags and digests in it.
    pub fn parse(url: &str) -> Result<Self, OciError> {
        let invalid = |why: &str| {
            OciError::InvalidUrl(format!(
                "spec.url '{}' is invalid: {why}",
                sluice_git::display_url(url)
            ))
        };
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| invalid("it must start with oci://"))?;
        let (registry, repository) = rest
            .split_once('/')
            .ok_or_else(|| invalid("it needs a repository path after the host"))?;
        let last = repository.rsplit('/').next().unwrap_or_default();
        if registry.contains('@') {
            return Err(invalid(
                "credentials belong in spec.secretRef, not in the URL",
            ));
        }
        if registry.is_empty() || repository.is_empty() {
            return Err(invalid("host and repository must not be empty"));
        }
        if repository.contains('@') || last.contains(':') {
            return Err(invalid("it must not contain a tag or digest; use spec.ref"));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.trim_end_matches('/').to_owned(),
        })
    }

    fn tagged(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            tag.to_owned(),
        )
    }

    fn pinned(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.registry.clone(),
            self.repository.clone(),
            digest.to_owned(),
        )
    }
}

/// A resolved artifact: the manifest digest and the revision naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedArtifact {
    pub digest: String,
    pub revision: String,
}

/// The pulled layer and manifest annotations.
pub struct PulledLayer {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
}

/// A client for one repository.
pub struct OciRemote {
    client: Client,
    auth: RegistryAuth,
    repository: Repository,
    timeout: Duration,
}

impl OciRemote {
    /// Builds a client for `repository` with `access`.
    pub fn new(repository: Repository, access: RegistryAccess) -> Self {
        let mut config = ClientConfig {
            protocol: if access.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            read_timeout: Some(access.timeout),
            connect_timeout: Some(access.timeout),
            ..ClientConfig::default()
        };
        if let Some(ca) = access.ca {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: ca,
            });
        }
        if let Some(proxy) = access.proxy {
            config.https_proxy = Some(proxy.clone());
            config.http_proxy = Some(proxy);
        }
        let auth = match access.auth {
            Some((username, password)) => RegistryAuth::Basic(username, password),
            None => RegistryAuth::Anonymous,
        };
        Self {
            client: Client::new(config),
            auth,
            repository,
            timeout: access.timeout,
        }
    }

    async fn timed<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, OciError> {
        tokio::time::timeout(self.timeout, operation)
            .await
            .map_err(|_| OciError::Timeout(self.timeout))?
            .map_err(|error| classify(what, &error))
    }

    /// Resolves `spec.ref` to a manifest digest with one HEAD (plus tag listing for SemVer).
    pub async fn resolve(
        &self,
        reference: Option<&OCIRepositoryRef>,
    ) -> Result<ResolvedArtifact, OciError> {
        let reference = reference.cloned().unwrap_or_default();
        if let Some(digest) = reference.digest.filter(|d| !d.is_empty()) {
            let pinned = self.repository.pinned(&digest);
            let head = self
                .timed(
                    "resolving the digest",
                    self.client.fetch_manifest_digest(&pinned, &self.auth),
                )
                .await?;
            return Ok(ResolvedArtifact {
                revision: head.clone(),
                digest: head,
            });
        }
        let tag = match reference.semver.filter(|s| !s.is_empty()) {
            Some(range) => {
                self.highest_tag(&range, reference.semver_filter.as_deref())
                    .await?
            }
            None => reference
                .tag
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| DEFAULT_TAG.to_owned()),
        };
        let digest = self
            .timed(
                &format!("resolving tag '{tag}'"),
                self.client
                    .fetch_manifest_digest(&self.repository.tagged(&tag), &self.auth),
            )
            .await?;
        Ok(ResolvedArtifact {
            revision: format!("{tag}@{digest}"),
            digest,
        })
    }

    async fn highest_tag(&self, range: &str, filter: Option<&str>) -> Result<String, OciError> {
        let parsed = nodejs_semver::Range::parse(range).map_err(|e| {
            OciError::InvalidUrl(format!(
                "invalid spec.ref.semver '{range}': {e}; use a range such as '>=1.0.0 <2.0.0'"
            ))
        })?;
        let filter = filter
            .filter(|f| !f.is_empty())
            .map(Regex::new)
            .transpose()
            .map_err(|e| OciError::InvalidUrl(format!("invalid spec.ref.semverFilter: {e}")))?;
        let listing = self.repository.tagged(DEFAULT_TAG);
        let mut tags = Vec::new();
        let mut last: Option<String> = None;
        for page_number in 0.. {
            if page_number == MAX_TAG_PAGES {
                return Err(OciError::Pull(format!(
                    "the tag list has more than {MAX_TAG_PAGES} pages of {TAGS_PAGE}; remove old tags or pin spec.ref.tag"
                )));
            }
            let page = self
                .timed(
                    "listing tags",
                    self.client
                        .list_tags(&listing, &self.auth, Some(TAGS_PAGE), last.as_deref()),
                )
                .await?;
            let count = page.tags.len();
            last = page.tags.last().cloned();
            tags.extend(page.tags);
            if count < TAGS_PAGE || last.is_none() {
                break;
            }
        }
        tags.into_iter()
            .filter(|tag| filter.as_ref().is_none_or(|f| f.is_match(tag)))
            .filter_map(|tag| parse_tag_version(&tag).map(|v| (v, tag)))
            .filter(|(version, _)| parsed.satisfies(version))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, tag)| tag)
            .ok_or_else(|| OciError::Pull(format!("no tag matches spec.ref.semver '{range}'; push a matching tag or widen the range")))
    }

    /// Pulls the manifest `digest` and its selected layer, refusing layers over `max_size` bytes.
    pub async fn pull_layer(
        &self,
        digest: &str,
        media_type: Option<&str>,
        max_size: u64,
    ) -> Result<PulledLayer, OciError> {
        let pinned = self.repository.pinned(digest);
        let (manifest, _) = self
            .timed(
                "pulling the manifest",
                self.client.pull_manifest(&pinned, &self.auth),
            )
            .await?;
        let OciManifest::Image(manifest) = manifest else {
            return Err(OciError::Pull(format!(
                "'{digest}' is an image index; push a single-manifest artifact (flux push artifact)"
            )));
        };
        let layer: &OciDescriptor = match media_type {
            Some(wanted) => manifest.layers.iter().find(|l| l.media_type == wanted).ok_or_else(|| {
                OciError::Pull(format!("no layer with media type '{wanted}' in '{digest}'; fix spec.layerSelector.mediaType"))
            })?,
            None => manifest.layers.first().ok_or_else(|| OciError::Pull(format!("artifact '{digest}' has no layers")))?,
        };
        if u64::try_from(layer.size).unwrap_or(u64::MAX) > max_size {
            return Err(OciError::Pull(format!(
                "layer {} is {} bytes, over the maximum of {max_size}; raise --max-artifact-size",
                layer.digest, layer.size
            )));
        }
        // Foreign `urls` are ignored: the layer comes from this registry or not at all.
        let layer = OciDescriptor {
            urls: None,
            ..layer.clone()
        };
        let declared = usize::try_from(layer.size).unwrap_or(usize::MAX);
        let mut sink = BoundedSink::new(declared);
        self.timed(
            "downloading the layer",
            self.client.pull_blob(&pinned, &layer, &mut sink),
        )
        .await?;
        Ok(PulledLayer {
            bytes: sink.bytes,
            media_type: layer.media_type.clone(),
            annotations: manifest.annotations.clone().unwrap_or_default(),
        })
    }
}

/// A layer buffer that refuses bytes beyond the size the manifest declared, so a registry cannot
/// make the controller hold more than it advertised before the digest is checked.
struct BoundedSink {
    bytes: Vec<u8>,
    limit: usize,
}

impl BoundedSink {
    fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(limit.min(1 << 20)),
            limit,
        }
    }
}

impl tokio::io::AsyncWrite for BoundedSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buffer: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len().saturating_add(buffer.len()) > this.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the {} bytes the manifest declares",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(buffer);
        std::task::Poll::Ready(Ok(buffer.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// What an error says, without response bodies a registry (or whatever the URL reached) sent:
/// a server error keeps its status only, other text is shortened.
fn describe(error: &OciDistributionError) -> String {
    match error {
        OciDistributionError::ServerError { code, url, .. } => {
            format!("{} answered HTTP {code}", strip_userinfo(url))
        }
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|error| format!("{:?}", error.code))
                .collect();
            format!("{} answered {}", strip_userinfo(url), codes.join(", "))
        }
        OciDistributionError::AuthenticationFailure(_) => {
            "the registry's token service refused the request".to_owned()
        }
        OciDistributionError::UnauthorizedError { url } => {
            format!("{} answered unauthorized", strip_userinfo(url))
        }
        other => shorten(&other.to_string()),
    }
}

/// `text` cut to at most [`MAX_REMOTE_TEXT`] characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REMOTE_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A URL without `user:password@`.
fn strip_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn classify(what: &str, error: &OciDistributionError) -> OciError {
    let text = describe(error);
    let authentication = matches!(
        error,
        OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. }
    ) || text.contains("401")
        || text.to_lowercase().contains("unauthorized");
    if authentication {
        OciError::Authentication(format!(
            "{what} failed: {text}; check the credentials in spec.secretRef"
        ))
    } else {
        OciError::Pull(format!("{what} failed: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_bodies_stay_out_of_messages() {
        let body = "internal-service-token=hunter2 ".repeat(20);
        let server = OciDistributionError::ServerError {
            code: 500,
            url: "http://user:pw@10.0.0.1/v2/x/manifests/latest".to_owned(),
            message: body.clone(),
        };
        let OciError::Pull(message) = classify("pulling the manifest", &server) else {
            panic!("not a pull error");
        };
        assert!(
            !message.contains("hunter2") && !message.contains("pw@"),
            "{message}"
        );
        assert!(message.contains("HTTP 500"), "{message}");
        let auth = OciDistributionError::AuthenticationFailure(body.clone());
        let text = classify("resolving", &auth).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let other = classify("x", &OciDistributionError::SpecViolationError(body));
        assert!(other.to_string().len() < 400, "{other}");
    }

    #[tokio::test]
    async fn a_layer_longer_than_declared_is_refused() {
        use tokio::io::AsyncWriteExt;
        let mut sink = BoundedSink::new(10);
        sink.write_all(b"0123456789").await.unwrap();
        assert!(sink.write_all(b"x").await.is_err());
        assert_eq!(sink.bytes.len(), 10);
    }

    #[test]
    fn url_parsing() {
        let repo = Repository::parse("oci://127.0.0.1:5000/org/app").unwrap();
        assert_eq!(repo.registry, "127.0.0.1:5000");
        assert_eq!(repo.repository, "org/app");
        assert!(Repository::parse("oci://127.0.0.1:5000/app:v1").is_err());
        assert!(Repository::parse("oci://127.0.0.1:5000/app@sha256:00").is_err());
        assert!(Repository::parse("https://x/app").is_err());
        assert!(Repository::parse("oci://host").is_err());
        let error = Repository::parse("oci://user:tok3n@host/app").unwrap_err();
        assert!(!error.to_string().contains("tok3n"), "{error}");
    }
}
