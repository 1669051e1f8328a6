//! OCI registry access through `sluice-registry`: reference resolution (tag, SemVer, digest) with
//! one manifest HEAD, download of the selected layer bounded by its declared size and digest, and
//! the cosign signatures of a manifest.

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;
use sluice_api::source::OCIRepositoryRef;
use sluice_registry::{Descriptor, ImageManifest, RegistryError};

use sluice_git::parse_tag_version;
use sluice_secrets::{RegistryAccess, SecretError};

use crate::cosign::{self, Signature};

/// Tag pulled when `spec.ref` is unset.
pub const DEFAULT_TAG: &str = "latest";

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

/// A client for one repository, on the process-wide registry client (shared tokens and TLS).
pub struct OciRemote {
    image: String,
    access: RegistryAccess,
    timeout: Duration,
}

impl OciRemote {
    /// A client for `repository` with `access`.
    pub fn new(repository: Repository, access: RegistryAccess) -> Self {
        let timeout = if access.timeout.is_zero() {
            sluice_registry::DEFAULT_TIMEOUT
        } else {
            access.timeout
        };
        Self {
            image: format!("{}/{}", repository.registry, repository.repository),
            timeout,
            access,
        }
    }

    /// Runs one operation (several requests) within the timeout, naming it in errors.
    async fn timed<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, RegistryError>>,
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
        let registry = sluice_registry::shared();
        let reference = reference.cloned().unwrap_or_default();
        if let Some(digest) = reference.digest.filter(|d| !d.is_empty()) {
            let head = self
                .timed(
                    "resolving the digest",
                    registry.manifest_digest(&self.image, &digest, &self.access),
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
                registry.manifest_digest(&self.image, &tag, &self.access),
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
        let tags = self
            .timed(
                "listing tags",
                sluice_registry::shared().list_tags(&self.image, &self.access),
            )
            .await?;
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
        let registry = sluice_registry::shared();
        let manifest = self
            .timed(
                "pulling the manifest",
                registry.manifest(&self.image, digest, &self.access),
            )
            .await?;
        if manifest.is_index() {
            return Err(OciError::Pull(format!(
                "'{digest}' is an image index; push a single-manifest artifact (flux push artifact)"
            )));
        }
        let manifest = manifest.image().map_err(|e| {
            OciError::Pull(format!(
                "the manifest '{digest}' is not an image manifest: {e}"
            ))
        })?;
        let layer = select_layer(&manifest, digest, media_type)?;
        if layer.size > max_size {
            return Err(OciError::Pull(format!(
                "layer {} is {} bytes, over the maximum of {max_size}; raise --max-artifact-size",
                layer.digest, layer.size
            )));
        }
        let capacity = usize::try_from(layer.size)
            .unwrap_or(usize::MAX)
            .min(1 << 20);
        let mut bytes = Vec::with_capacity(capacity);
        self.timed(
            "downloading the layer",
            registry.blob(&self.image, layer, &self.access, &mut bytes),
        )
        .await?;
        Ok(PulledLayer {
            bytes,
            media_type: layer.media_type.clone(),
            annotations: manifest.annotations.clone(),
        })
    }

    /// `host/repository@digest`, as cosign and Flux name a pinned artifact.
    pub fn digest_reference(&self, digest: &str) -> String {
        format!("{}@{digest}", self.image)
    }

    /// The cosign signatures of manifest `digest` (none when its `.sig` tag does not exist),
    /// each payload read within [`cosign::MAX_PAYLOAD_BYTES`] and checked against its digest.
    pub async fn cosign_signatures(&self, digest: &str) -> Result<Vec<Signature>, OciError> {
        let tag = cosign::signature_tag(digest).map_err(|e| OciError::Pull(e.to_string()))?;
        let registry = sluice_registry::shared();
        let pulled = tokio::time::timeout(
            self.timeout,
            registry.manifest(&self.image, &tag, &self.access),
        )
        .await
        .map_err(|_| OciError::Timeout(self.timeout))?;
        let manifest = match pulled {
            Ok(manifest) => manifest,
            Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
            Err(error) => return Err(classify("pulling the signature manifest", &error)),
        };
        let manifest = manifest.image().map_err(|e| {
            OciError::Pull(format!(
                "the signature manifest '{tag}' is not an image manifest: {e}"
            ))
        })?;
        let mut signatures = Vec::new();
        for (layer, signature) in cosign::signature_layers(&manifest) {
            if layer.size > cosign::MAX_PAYLOAD_BYTES {
                return Err(OciError::Pull(format!(
                    "signature payload {} in '{tag}' is {} bytes, over the maximum of {}; it is not a cosign payload",
                    layer.digest,
                    layer.size,
                    cosign::MAX_PAYLOAD_BYTES
                )));
            }
            let mut payload = Vec::new();
            self.timed(
                "downloading a signature payload",
                registry.blob(&self.image, layer, &self.access, &mut payload),
            )
            .await?;
            signatures.push(Signature {
                payload,
                signature: signature.to_owned(),
            });
        }
        Ok(signatures)
    }
}

/// The layer with `media_type`, else the first one.
fn select_layer<'a>(
    manifest: &'a ImageManifest,
    digest: &str,
    media_type: Option<&str>,
) -> Result<&'a Descriptor, OciError> {
    match media_type {
        Some(wanted) => manifest
            .layers
            .iter()
            .find(|l| l.media_type == wanted)
            .ok_or_else(|| {
                OciError::Pull(format!(
                    "no layer with media type '{wanted}' in '{digest}'; fix spec.layerSelector.mediaType"
                ))
            }),
        None => manifest
            .layers
            .first()
            .ok_or_else(|| OciError::Pull(format!("artifact '{digest}' has no layers"))),
    }
}

/// Authentication failures keep Flux's reason; the registry error already says what to check.
fn classify(what: &str, error: &RegistryError) -> OciError {
    match error {
        RegistryError::Timeout { timeout, .. } => OciError::Timeout(*timeout),
        error if error.is_authentication_failure() => {
            OciError::Authentication(format!("{what} failed: {error}"))
        }
        error => OciError::Pull(format!("{what} failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_timeout_means_the_default() {
        let repository = Repository::parse("oci://127.0.0.1:5000/app").unwrap();
        let remote = OciRemote::new(repository, RegistryAccess::default());
        assert_eq!(remote.timeout, sluice_registry::DEFAULT_TIMEOUT);
    }

    #[test]
    fn layers_are_selected_by_media_type_or_first() {
        let layer = |media_type: &str| Descriptor {
            media_type: media_type.into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            annotations: BTreeMap::new(),
        };
        let manifest = ImageManifest {
            layers: vec![layer("a"), layer("b")],
            ..ImageManifest::default()
        };
        assert_eq!(select_layer(&manifest, "d", None).unwrap().media_type, "a");
        assert_eq!(
            select_layer(&manifest, "d", Some("b")).unwrap().media_type,
            "b"
        );
        let error = select_layer(&manifest, "d", Some("c")).unwrap_err();
        assert!(
            error.to_string().contains("spec.layerSelector.mediaType"),
            "{error}"
        );
        let empty = select_layer(&ImageManifest::default(), "d", None).unwrap_err();
        assert!(empty.to_string().contains("no layers"), "{empty}");
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
