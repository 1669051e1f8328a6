//! Pulling content by digest: a manifest read within a byte cap and checked against the digest it
//! was asked by, and a blob streamed to a writer, refused past its declared size or digest.

use std::collections::BTreeMap;

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::RegistryError;
use crate::digest::{MANIFEST_ACCEPT, valid_digest, valid_tag};
use crate::session::Session;

/// Largest manifest accepted, as containerd and go-containerregistry bound them.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Media types of manifests that list other manifests rather than layers.
const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A manifest as the registry served it.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// `sha256:<hex>` of the body.
    pub digest: String,
    /// The body's `mediaType`, else the response's `Content-Type`.
    pub media_type: String,
    pub body: Vec<u8>,
}

impl Manifest {
    /// Whether this is an image index (or Docker manifest list) rather than an image manifest.
    pub fn is_index(&self) -> bool {
        INDEX_MEDIA_TYPES.contains(&self.media_type.as_str())
    }

    /// The body as an image manifest: its layers, config and annotations.
    pub fn image(&self) -> Result<ImageManifest, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The parts of an OCI (or Docker v2) image manifest a controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A content descriptor. Foreign `urls` are not read: content comes from the registry only.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaTypeOnly {
    #[serde(default)]
    media_type: Option<String>,
}

/// `GET /v2/<repository>/manifests/<reference>` (a tag or a digest), at most [`MAX_MANIFEST_BYTES`].
pub(crate) async fn manifest(
    session: &mut Session<'_>,
    repository: &str,
    reference: &str,
) -> Result<Manifest, RegistryError> {
    let pinned = valid_digest(reference);
    if !pinned && !valid_tag(reference) {
        return Err(session.invalid(format!("'{reference}' is neither a tag nor a digest")));
    }
    let url = session.url(&format!("/v2/{repository}/manifests/{reference}"))?;
    let what = format!("the manifest {repository}:{reference}");
    let response = session
        .send(Method::GET, url, MANIFEST_ACCEPT, &what)
        .await?;
    let served_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
    let body = session.body(response, MAX_MANIFEST_BYTES).await?;
    let digest = if reference.starts_with("sha512:") {
        format!("sha512:{}", hex::encode(Sha512::digest(&body)))
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(&body)))
    };
    if pinned && digest != reference {
        return Err(session.invalid(format!(
            "{what} has the digest {digest}, not the one asked for"
        )));
    }
    let declared = serde_json::from_slice::<MediaTypeOnly>(&body)
        .map_err(|e| session.invalid(format!("{what} is not valid JSON: {e}")))?
        .media_type;
    Ok(Manifest {
        digest,
        media_type: declared.or(served_type).unwrap_or_default(),
        body,
    })
}

/// Streams blob `descriptor` into `sink`: more bytes than its `size`, fewer, or other bytes than
/// its digest names are refused (the sink may then hold a prefix; discard it).
pub(crate) async fn blob(
    session: &mut Session<'_>,
    repository: &str,
    descriptor: &Descriptor,
    sink: &mut (impl AsyncWrite + Unpin),
) -> Result<(), RegistryError> {
    let digest = descriptor.digest.as_str();
    if !valid_digest(digest) {
        return Err(session.invalid(format!("the blob digest '{digest}' is not a digest")));
    }
    let url = session.url(&format!("/v2/{repository}/blobs/{digest}"))?;
    let what = format!("the blob {repository}@{digest}");
    let mut response = session.send(Method::GET, url, "*/*", &what).await?;
    let mut hasher = BlobHasher::for_digest(digest);
    let mut received: u64 = 0;
    while let Some(chunk) = session.chunk(&mut response).await? {
        received = received.saturating_add(chunk.len() as u64);
        if received > descriptor.size {
            return Err(session.invalid(format!(
                "{what} is longer than the {} bytes its descriptor declares",
                descriptor.size
            )));
        }
        hasher.update(&chunk);
        sink.write_all(&chunk)
            .await
            .map_err(|e| RegistryError::Storage(format!("writing {what} failed: {e}")))?;
    }
    if received != descriptor.size {
        return Err(session.invalid(format!(
            "{what} ended after {received} of the {} bytes its descriptor declares",
            descriptor.size
        )));
    }
    let actual = hasher.finish();
    if actual != digest {
        return Err(session.invalid(format!("{what} has the digest {actual}")));
    }
    sink.flush()
        .await
        .map_err(|e| RegistryError::Storage(format!("writing {what} failed: {e}")))
}

enum BlobHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl BlobHasher {
    fn for_digest(digest: &str) -> Self {
        if digest.starts_with("sha512:") {
            Self::Sha512(Sha512::new())
        } else {
            Self::Sha256(Sha256::new())
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Sha256(hasher) => format!("sha256:{}", hex::encode(hasher.finalize())),
            Self::Sha512(hasher) => format!("sha512:{}", hex::encode(hasher.finalize())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_told_apart_from_indexes() {
        let manifest = |media_type: &str| Manifest {
            digest: String::new(),
            media_type: media_type.into(),
            body: Vec::new(),
        };
        assert!(manifest("application/vnd.oci.image.index.v1+json").is_index());
        assert!(!manifest("application/vnd.oci.image.manifest.v1+json").is_index());
    }

    #[test]
    fn image_manifests_parse_without_optional_fields() {
        let body = br#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"sha256:00","size":12,"urls":["http://elsewhere"]}],"annotations":{"org.opencontainers.image.revision":"main@sha1:1"}}"#;
        let manifest = Manifest {
            digest: String::new(),
            media_type: String::new(),
            body: body.to_vec(),
        };
        let image = manifest.image().unwrap();
        assert_eq!(image.layers[0].size, 12);
        assert_eq!(
            image.annotations["org.opencontainers.image.revision"],
            "main@sha1:1"
        );
        assert!(image.config.is_none());
    }
}
