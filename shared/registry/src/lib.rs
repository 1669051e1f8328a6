//! A container-registry client for tag scanning, as Flux's image-reflector-controller does it:
//!
//! - [`ImageName`] and [`canonical_name`]: `spec.image` parsed as Flux parses it
//!   (`nginx` → `index.docker.io/library/nginx`);
//! - [`RegistryClient::list_tags`]: `GET /v2/<name>/tags/list`, following `Link` pages on the
//!   same host only, within [`Limits`];
//! - [`RegistryClient::manifest_digest`]: the digest of a tag, for `digestReflectionPolicy`;
//! - anonymous requests first, then the registry's Bearer (token service, cached per registry,
//!   scope and credentials) or Basic challenge; CA bundle, client certificate, proxy, `insecure`
//!   (plain HTTP) and a timeout on every request, all from [`RegistryAccess`];
//! - [`RegistryError`]: what failed and what to do, never a password, token or header.

mod challenge;
mod digest;
mod error;
mod reference;
mod session;
mod tags;
mod tokens;

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub use challenge::{Challenge, next_link};
pub use digest::MANIFEST_ACCEPT;
pub use error::RegistryError;
pub use reference::{DOCKER_HUB, ImageName, canonical_name};
pub use session::DEFAULT_TIMEOUT;
pub use sluice_secrets::RegistryAccess;

use session::Session;
use tokens::TokenCache;

/// Bounds that keep a hostile or huge registry from exhausting memory.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Tags asked for per page (`?n=`); Flux asks for 1,000.
    pub page_size: usize,
    /// Pages followed before giving up.
    pub max_pages: usize,
    /// Tags accepted in total.
    pub max_tags: usize,
    /// Bytes accepted per tag-list page.
    pub max_page_bytes: usize,
    /// Bearer tokens kept in the cache.
    pub max_cached_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            page_size: 1_000,
            max_pages: 1_000,
            max_tags: 100_000,
            max_page_bytes: 8 * 1024 * 1024,
            max_cached_tokens: 1_024,
        }
    }
}

/// A registry client; cheap to share, it holds only the token cache and the limits.
pub struct RegistryClient {
    limits: Limits,
    tokens: Mutex<TokenCache>,
}

impl Default for RegistryClient {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl RegistryClient {
    /// A client with the given limits.
    pub fn new(limits: Limits) -> Self {
        let tokens = Mutex::new(TokenCache::new(limits.max_cached_tokens));
        Self { limits, tokens }
    }

    /// Every tag of `image` (no tag or digest in it), in the registry's order.
    pub async fn list_tags(
        &self,
        image: &str,
        access: &RegistryAccess,
    ) -> Result<Vec<String>, RegistryError> {
        let name = ImageName::parse(image)?;
        let started = Instant::now();
        let mut session = Session::new(&name, access, &self.tokens)?;
        let tags = tags::list(&mut session, &name.repository, &self.limits).await?;
        tracing::debug!(
            image = %name,
            tags = tags.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listed tags"
        );
        Ok(tags)
    }

    /// The manifest digest (`sha256:…`) that `image:tag` points to.
    pub async fn manifest_digest(
        &self,
        image: &str,
        tag: &str,
        access: &RegistryAccess,
    ) -> Result<String, RegistryError> {
        let name = ImageName::parse(image)?;
        let mut session = Session::new(&name, access, &self.tokens)?;
        let digest = digest::manifest_digest(&mut session, &name.repository, tag).await?;
        tracing::debug!(image = %name, tag, %digest, "resolved digest");
        Ok(digest)
    }
}

fn shared() -> &'static RegistryClient {
    static SHARED: OnceLock<RegistryClient> = OnceLock::new();
    SHARED.get_or_init(RegistryClient::default)
}

/// [`RegistryClient::list_tags`] on a process-wide client with default [`Limits`].
pub async fn list_tags(image: &str, access: &RegistryAccess) -> Result<Vec<String>, RegistryError> {
    shared().list_tags(image, access).await
}

/// [`RegistryClient::manifest_digest`] on a process-wide client with default [`Limits`].
pub async fn manifest_digest(
    image: &str,
    tag: &str,
    access: &RegistryAccess,
) -> Result<String, RegistryError> {
    shared().manifest_digest(image, tag, access).await
}
