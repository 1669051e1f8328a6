//! The digest of a tagged manifest: `HEAD` and `Docker-Content-Digest`, else `GET` and SHA-256.

use reqwest::Method;
use sha2::{Digest, Sha256};

use crate::RegistryError;
use crate::pull::MAX_MANIFEST_BYTES;
use crate::session::Session;

/// Manifest and index media types a registry may answer with, OCI and Docker.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";
const MAX_TAG_LEN: usize = 128;

/// The `sha256:<hex>` digest of the manifest `reference` (a tag, or a digest to check it exists).
pub(crate) async fn manifest_digest(
    session: &mut Session<'_>,
    repository: &str,
    reference: &str,
) -> Result<String, RegistryError> {
    if !valid_tag(reference) && !valid_digest(reference) {
        return Err(RegistryError::InvalidImage {
            image: format!("{repository}:{reference}"),
            reason: format!(
                "'{reference}' is not a tag: up to {MAX_TAG_LEN} letters, digits, '_', '.' and '-', not starting with '.' or '-'"
            ),
        });
    }
    let url = session.url(&format!("/v2/{repository}/manifests/{reference}"))?;
    let what = format!("the manifest {repository}:{reference}");
    let head = session
        .send(Method::HEAD, url.clone(), MANIFEST_ACCEPT, &what)
        .await?;
    let served = head
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .filter(|digest| valid_digest(digest));
    if let Some(digest) = served {
        return Ok(digest.to_owned());
    }
    let response = session
        .send(Method::GET, url, MANIFEST_ACCEPT, &what)
        .await?;
    let body = session.body(response, MAX_MANIFEST_BYTES).await?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&body))))
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && tag.len() <= MAX_TAG_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `algorithm:hex` with a known algorithm and the right length.
pub(crate) fn valid_digest(digest: &str) -> bool {
    let (length, hex) = match digest.split_once(':') {
        Some(("sha256", hex)) => (64, hex),
        Some(("sha512", hex)) => (128, hex),
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("v1.2.3-rc.1"));
        assert!(valid_tag("_x"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag("../x"));
        assert!(!valid_tag(""));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_digest(&format!("sha256:{}", "g".repeat(64))));
        assert!(!valid_digest("md5:abc"));
    }
}
