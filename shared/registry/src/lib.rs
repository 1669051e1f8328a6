//! A container-registry client for tag scanning, as Flux's image-reflector-controller does it:
//!
//! - [`ImageName`] and [`canonical_name`]: `spec.image` parsed as Flux parses it
//!   (`nginx` → `index.docker.io/library/nginx`);
//! - [`RegistryClient::list_tags`]: `GET /v2/<name>/tags/list`, following `Link` pages on the
//!   same host only, within [`Limits`];
//! - [`RegistryClient::manifest_digest`]: the digest of a tag, for `digestReflectionPolicy`;
//! - [`RegistryClient::manifest`] and [`RegistryClient::blob`]: content pulled within the
//!   [`MAX_MANIFEST_BYTES`] cap or a blob's declared size, checked against its digest;
//! - anonymous requests first, then the registry's Bearer (token service, cached per registry,
//!   scope and credentials) or Basic challenge; CA bundle, client certificate, proxy, `insecure`
//!   (plain HTTP) and a timeout on every request, all from [`RegistryAccess`];
//! - [`RegistryError`]: what failed and what to do, never a password, token or header.
//!
//! Unlike go-containerregistry, `insecure` alone selects plain HTTP: loopback and private
//! addresses are not retried over HTTP after HTTPS fails.

mod challenge;
mod clients;
mod digest;
mod error;
mod pull;
mod reference;
mod session;
mod tags;
mod tokens;

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

pub use challenge::{Challenge, next_link};
pub use clients::DEFAULT_TIMEOUT;
pub use digest::MANIFEST_ACCEPT;
pub use error::RegistryError;
pub use pull::{Descriptor, ImageManifest, MAX_MANIFEST_BYTES, Manifest};
pub use reference::{DOCKER_HUB, ImageName, canonical_name};
pub use sluice_secrets::RegistryAccess;

use clients::ClientCache;
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
    /// HTTP clients kept, one per distinct CA, client certificate, proxy and timeout.
    pub max_cached_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            page_size: 1_000,
            max_pages: 1_000,
            max_tags: 100_000,
            max_page_bytes: 8 * 1024 * 1024,
            max_cached_tokens: 1_024,
            max_cached_clients: 64,
        }
    }
}

/// A registry client: the limits, the token cache and the HTTP clients; share one per process.
pub struct RegistryClient {
    limits: Limits,
    tokens: Mutex<TokenCache>,
    clients: Mutex<ClientCache>,
}

impl Default for RegistryClient {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl RegistryClient {
    /// A client with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            tokens: Mutex::new(TokenCache::new(limits.max_cached_tokens)),
            clients: Mutex::new(ClientCache::new(limits.max_cached_clients)),
            limits,
        }
    }

    fn session<'a>(
        &'a self,
        name: &'a ImageName,
        access: &'a RegistryAccess,
    ) -> Result<Session<'a>, RegistryError> {
        let http = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .client(access)?;
        Session::new(name, access, http, &self.tokens)
    }

    /// Every tag of `image` (no tag or digest in it), in the registry's order.
    pub async fn list_tags(
        &self,
        image: &str,
        access: &RegistryAccess,
    ) -> Result<Vec<String>, RegistryError> {
        let name = ImageName::parse(image)?;
        let started = Instant::now();
        let mut session = self.session(&name, access)?;
        let tags = tags::list(&mut session, &name.repository, &self.limits).await?;
        tracing::debug!(
            image = %name,
            tags = tags.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listed tags"
        );
        Ok(tags)
    }

    /// The manifest digest (`sha256:…`) that `image:tag` points to; a digest as `tag` is checked
    /// to exist and returned.
    pub async fn manifest_digest(
        &self,
        image: &str,
        tag: &str,
        access: &RegistryAccess,
    ) -> Result<String, RegistryError> {
        let name = ImageName::parse(image)?;
        let mut session = self.session(&name, access)?;
        let digest = digest::manifest_digest(&mut session, &name.repository, tag).await?;
        tracing::debug!(image = %name, tag, %digest, "resolved digest");
        Ok(digest)
    }

    /// The manifest `image:reference` (a tag or digest), checked against a digest reference.
    pub async fn manifest(
        &self,
        image: &str,
        reference: &str,
        access: &RegistryAccess,
    ) -> Result<Manifest, RegistryError> {
        let name = ImageName::parse(image)?;
        let mut session = self.session(&name, access)?;
        pull::manifest(&mut session, &name.repository, reference).await
    }

    /// Streams the blob `descriptor` of `image` into `sink`, checked against its size and digest.
    pub async fn blob(
        &self,
        image: &str,
        descriptor: &Descriptor,
        access: &RegistryAccess,
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<(), RegistryError> {
        let name = ImageName::parse(image)?;
        let mut session = self.session(&name, access)?;
        pull::blob(&mut session, &name.repository, descriptor, sink).await
    }
}

/// The process-wide client with default [`Limits`] that the free functions use.
pub fn shared() -> &'static RegistryClient {
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
