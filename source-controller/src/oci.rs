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
        let invalid =
            |why: &str| OciError::InvalidUrl(format!("spec.url '{url}' is invalid: {why}"));
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| invalid("it must start with oci://"))?;
        let (registry, repository) = rest
            .split_once('/')
            .ok_or_else(|| invalid("it needs a repository path after the host"))?;
        let last = repository.rsplit('/').next().unwrap_or_default();
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
        loop {
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
        let mut bytes = Vec::new();
        self.timed(
            "downloading the layer",
            self.client.pull_blob(&pinned, layer, &mut bytes),
        )
        .await?;
        Ok(PulledLayer {
            bytes,
            media_type: layer.media_type.clone(),
            annotations: manifest.annotations.clone().unwrap_or_default(),
        })
    }
}

fn classify(what: &str, error: &OciDistributionError) -> OciError {
    let text = error.to_string();
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
    fn url_parsing() {
        let repo = Repository::parse("oci://127.0.0.1:5000/org/app").unwrap();
        assert_eq!(repo.registry, "127.0.0.1:5000");
        assert_eq!(repo.repository, "org/app");
        assert!(Repository::parse("oci://127.0.0.1:5000/app:v1").is_err());
        assert!(Repository::parse("oci://127.0.0.1:5000/app@sha256:00").is_err());
        assert!(Repository::parse("https://x/app").is_err());
        assert!(Repository::parse("oci://host").is_err());
    }
}
