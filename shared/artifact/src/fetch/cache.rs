//! Downloading a source artifact, verifying its digest and unpacking it safely, cached by digest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sluice_api::meta::Artifact;

use super::{Downloader, FetchError, FetchHints, resolve_url_with};
use crate::archive::{ArchiveError, ExtractOptions, UnsafeEntries, extract_tar_gz};
use crate::digest::parse_expected;

/// Environment variable that replaces the host of artifact URLs (Flux's `SOURCE_CONTROLLER_LOCALHOST`).
pub const SOURCE_HOST_OVERRIDE_ENV: &str = "SOURCE_CONTROLLER_LOCALHOST";

/// Settings of the artifact fetcher.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Directory holding unpacked artifacts, one subdirectory per digest.
    pub cache_dir: PathBuf,
    /// Largest download, and largest total unpacked size, in bytes.
    pub max_size: u64,
    /// Retries after transport errors and 5xx responses.
    pub retries: u32,
    /// Unpacked artifacts kept in the cache; older ones not in use are removed.
    pub max_cached: usize,
    /// Unpacked bytes kept in the cache; older artifacts not in use are removed.
    pub max_cached_bytes: u64,
    /// Hosts artifact URLs may name (`host` or `host:port`, `*` for any); an artifact elsewhere
    /// is refused. The `SOURCE_CONTROLLER_LOCALHOST` override, when set, is always allowed.
    pub allowed_hosts: Vec<String>,
    /// The caller's server and flags, named in errors.
    pub hints: &'static FetchHints,
}

/// Whether `url` names a host in `allowed` (`*` allows every host).
pub fn host_allowed(url: &reqwest::Url, allowed: &[String]) -> bool {
    let host = url.host_str().unwrap_or_default().trim_end_matches('.');
    let with_port = url.port().map(|port| format!("{host}:{port}"));
    allowed.iter().any(|entry| {
        let entry = entry.trim().trim_end_matches('.');
        entry == "*"
            || entry.eq_ignore_ascii_case(host)
            || with_port
                .as_deref()
                .is_some_and(|with_port| entry.eq_ignore_ascii_case(with_port))
    })
}

/// Downloads artifacts and keeps them unpacked by digest, so an unchanged revision is reused.
pub struct ArtifactFetcher {
    downloader: Downloader,
    options: FetchOptions,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Cached keys with their unpacked sizes, least recently used first.
    recent: Mutex<Vec<(String, u64)>>,
    /// One lease per key; a key whose lease has other holders is in use and never evicted.
    leases: Mutex<HashMap<String, Arc<()>>>,
}

/// An unpacked artifact in the cache; it is not evicted while this value lives.
#[derive(Debug)]
pub struct CachedArtifact {
    path: PathBuf,
    _lease: Arc<()>,
}

impl CachedArtifact {
    /// The directory the artifact is unpacked in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ArtifactFetcher {
    /// A fetcher using `http` for downloads.
    pub fn new(http: reqwest::Client, options: FetchOptions) -> Self {
        Self {
            downloader: Downloader::new(http, options.max_size, options.retries)
                .with_hints(options.hints),
            options,
            in_flight: Mutex::default(),
            recent: Mutex::default(),
            leases: Mutex::default(),
        }
    }

    /// The unpacked directory of `artifact`, downloading and unpacking it when not cached; it
    /// stays in the cache while the returned value is held.
    pub async fn fetch(&self, artifact: &Artifact) -> Result<CachedArtifact, FetchError> {
        let expected = parse_expected(&artifact.digest)?;
        let key = format!("{}-{}", expected.algorithm, expected.hex);
        let target = self.options.cache_dir.join(&key);
        let lock = self.lock_for(&key);
        let _guard = lock.lock().await;
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            let size = self.size_of(&key);
            return Ok(self.lease(&key, target, size));
        }
        let url = resolve_url(&artifact.url)?;
        let overridden = std::env::var(SOURCE_HOST_OVERRIDE_ENV).is_ok_and(|host| !host.is_empty());
        if !overridden && !host_allowed(&url, &self.options.allowed_hosts) {
            return Err(FetchError::InvalidUrl {
                url: url.to_string(),
                reason: format!(
                    "the host is not an allowed artifact host ({}); {}",
                    self.options.allowed_hosts.join(", "),
                    self.options.hints.allowed_hosts
                ),
            });
        }
        let cache_error = |source| FetchError::Cache {
            url: url.to_string(),
            dir: self.options.cache_dir.display().to_string(),
            source,
        };
        tokio::fs::create_dir_all(&self.options.cache_dir)
            .await
            .map_err(cache_error)?;
        let download =
            tempfile::NamedTempFile::new_in(&self.options.cache_dir).map_err(cache_error)?;
        let (file, download_path) = download.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        self.downloader
            .download(&url, &artifact.digest, &mut file)
            .await
            .map_err(|error| match error {
                FetchError::Write { url, source } => FetchError::Cache {
                    url,
                    dir: self.options.cache_dir.display().to_string(),
                    source,
                },
                other => other,
            })?;
        drop(file);
        let unpack_dir = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&self.options.cache_dir)
            .map_err(cache_error)?;
        let (max_size, hints) = (self.options.max_size, self.options.hints);
        let archive_path = download_path.to_path_buf();
        let unpack_path = unpack_dir.path().to_path_buf();
        let url_text = url.to_string();
        let size = tokio::task::spawn_blocking(move || {
            unpack(&archive_path, &unpack_path, max_size, hints, &url_text)?;
            Ok::<_, FetchError>(tree_size(&unpack_path))
        })
        .await
        .map_err(|error| FetchError::InvalidArchive {
            url: url.to_string(),
            reason: format!("unpacking task failed: {error}"),
        })??;
        let unpacked = unpack_dir.keep();
        if let Err(error) = tokio::fs::rename(&unpacked, &target).await {
            let _ = tokio::fs::remove_dir_all(&unpacked).await;
            return Err(cache_error(error));
        }
        let cached = self.lease(&key, target, size);
        self.evict().await;
        Ok(cached)
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.retain(|_, lock| Arc::strong_count(lock) > 1);
        in_flight.entry(key.to_owned()).or_default().clone()
    }

    /// The recorded size of a cached key (0 for one unpacked before this process started).
    fn size_of(&self, key: &str) -> u64 {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, size)| *size)
    }

    /// Marks `key` most recently used and in use by the returned value (call under its lock).
    fn lease(&self, key: &str, path: PathBuf, size: u64) -> CachedArtifact {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|(existing, _)| existing != key);
        recent.push((key.to_owned(), size));
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        leases.retain(|_, lease| Arc::strong_count(lease) > 1);
        let lease = leases.entry(key.to_owned()).or_default().clone();
        CachedArtifact {
            path,
            _lease: lease,
        }
    }

    fn in_use(&self, key: &str) -> bool {
        let leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        leases
            .get(key)
            .is_some_and(|lease| Arc::strong_count(lease) > 1)
    }

    /// Removes the least recently used artifacts not in use until the count and byte limits hold.
    async fn evict(&self) {
        let stale: Vec<String> = {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            let mut count = recent.len();
            let mut bytes: u64 = recent.iter().map(|(_, size)| size).sum();
            let mut stale = Vec::new();
            recent.retain(|(key, size)| {
                let over = count > self.options.max_cached || bytes > self.options.max_cached_bytes;
                if !over || self.in_use(key) {
                    return true;
                }
                count -= 1;
                bytes = bytes.saturating_sub(*size);
                stale.push(key.clone());
                false
            });
            stale
        };
        for key in stale {
            let lock = self.lock_for(&key);
            let _guard = lock.lock().await;
            let touched = {
                let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                recent.iter().any(|(k, _)| *k == key)
            };
            if touched || self.in_use(&key) {
                continue;
            }
            if let Err(error) = tokio::fs::remove_dir_all(self.options.cache_dir.join(&key)).await {
                tracing::debug!(artifact = %key, %error, "removing a cached artifact failed");
            }
        }
    }
}

/// The artifact URL with its host replaced by `SOURCE_CONTROLLER_LOCALHOST` when that is set.
fn resolve_url(url: &str) -> Result<reqwest::Url, FetchError> {
    let host = std::env::var(SOURCE_HOST_OVERRIDE_ENV).ok();
    resolve_url_with(url, host.as_deref(), SOURCE_HOST_OVERRIDE_ENV)
}

/// Bytes of the regular files below `dir` (what an unpacked artifact occupies, roughly).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => tree_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Unpacks a tar.gz into `into`: regular files and directories only, relative paths without `..`
/// (an error otherwise), total size at most `max_size` (`hints` say how to raise it); symlinks
/// and other entry types are skipped.
fn unpack(
    archive: &Path,
    into: &Path,
    max_size: u64,
    hints: &FetchHints,
    url: &str,
) -> Result<(), FetchError> {
    let invalid = |reason: String| FetchError::InvalidArchive {
        url: url.to_owned(),
        reason,
    };
    let file = std::fs::File::open(archive).map_err(|error| invalid(error.to_string()))?;
    if file.metadata().map(|metadata| metadata.len()).unwrap_or(0) == 0 {
        return Err(invalid("the file is empty".to_owned()));
    }
    let options = ExtractOptions {
        subdir: None,
        max_size: Some(max_size),
        unsafe_entries: UnsafeEntries::Error,
    };
    extract_tar_gz(file, into, &options).map_err(|error| match error {
        ArchiveError::TooLarge { limit } => invalid(format!(
            "unpacked size exceeds the {limit}-byte limit; {}",
            hints.raise_limit
        )),
        ArchiveError::UnsafePath { entry } => invalid(format!(
            "entry {entry} escapes the archive root (absolute path or `..`)"
        )),
        other => invalid(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = crate::archive::ArchiveBuilder::new(Vec::new());
        for (name, body) in entries {
            builder.append_bytes(name, body, 0o644).unwrap();
        }
        builder.finish().unwrap()
    }

    #[test]
    fn enforces_the_size_cap_and_rejects_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(&archive, tarball(&[("big", &[0u8; 2048])])).unwrap();
        let hints = &FetchHints::GENERIC;
        let error = unpack(&archive, dir.path(), 1024, hints, "u").unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
        std::fs::write(&archive, b"").unwrap();
        let error = unpack(&archive, dir.path(), 1024, hints, "u").unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }

    /// Serves `archives` from a real HTTP server on 127.0.0.1 and returns their artifacts.
    async fn serve_archives(root: &Path, names: &[&str]) -> Vec<Artifact> {
        use sha2::{Digest as _, Sha256};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut artifacts = Vec::new();
        for name in names {
            let body = vec![name.as_bytes()[0]; 1000];
            let bytes = tarball(&[("data", &body)]);
            std::fs::write(root.join(format!("{name}.tar.gz")), &bytes).unwrap();
            artifacts.push(Artifact {
                digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
                last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                metadata: Default::default(),
                path: format!("{name}.tar.gz"),
                revision: (*name).to_owned(),
                size: None,
                url: format!("http://{address}/{name}.tar.gz"),
            });
        }
        let store = Arc::new(root.to_path_buf());
        tokio::spawn(crate::serve::serve(
            listener,
            store,
            tokio_util::sync::CancellationToken::new(),
        ));
        artifacts
    }

    fn fetcher(cache_dir: &Path, max_cached: usize, max_cached_bytes: u64) -> ArtifactFetcher {
        ArtifactFetcher::new(
            reqwest::Client::new(),
            FetchOptions {
                cache_dir: cache_dir.to_path_buf(),
                max_size: 1 << 20,
                retries: 0,
                max_cached,
                max_cached_bytes,
                allowed_hosts: vec!["127.0.0.1".to_owned()],
                hints: &FetchHints::GENERIC,
            },
        )
    }

    #[tokio::test]
    async fn eviction_counts_bytes_and_spares_artifacts_in_use() {
        let served = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let artifacts = serve_archives(served.path(), &["a", "b", "c", "d"]).await;
        let fetcher = fetcher(cache.path(), 100, 2_500);
        let held = fetcher.fetch(&artifacts[0]).await.unwrap();
        let b = fetcher
            .fetch(&artifacts[1])
            .await
            .unwrap()
            .path()
            .to_path_buf();
        let c = fetcher.fetch(&artifacts[2]).await.unwrap();
        assert!(held.path().join("data").is_file(), "the oldest is in use");
        assert!(
            !b.exists(),
            "over 2,500 bytes the oldest unused artifact goes"
        );
        assert!(c.path().join("data").is_file());
        drop(held);
        let d = fetcher.fetch(&artifacts[3]).await.unwrap();
        assert!(d.path().join("data").is_file());
        assert!(c.path().join("data").is_file(), "c is still held");
        let cached = std::fs::read_dir(cache.path()).unwrap().count();
        assert_eq!(cached, 2, "a was evicted once released");
    }

    #[tokio::test]
    async fn artifacts_on_hosts_outside_the_allowlist_are_refused() {
        let served = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let artifacts = serve_archives(served.path(), &["a"]).await;
        let mut fetcher = fetcher(cache.path(), 10, u64::MAX);
        fetcher.options.allowed_hosts =
            vec!["source-controller.flux-system.svc.cluster.local.".to_owned()];
        let error = fetcher.fetch(&artifacts[0]).await.unwrap_err();
        assert!(
            error.to_string().contains("not an allowed artifact host"),
            "{error}"
        );
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
        let url = |text: &str| reqwest::Url::parse(text).unwrap();
        let allowed = [
            "source-controller.flux-system.svc.cluster.local.".to_owned(),
            "10.0.0.1:9090".to_owned(),
        ];
        assert!(host_allowed(
            &url("http://source-controller.flux-system.svc.cluster.local./a"),
            &allowed
        ));
        assert!(host_allowed(
            &url("http://source-controller.flux-system.svc.cluster.local/a"),
            &allowed
        ));
        assert!(host_allowed(&url("http://10.0.0.1:9090/a"), &allowed));
        assert!(!host_allowed(&url("http://10.0.0.1:9091/a"), &allowed));
        assert!(!host_allowed(
            &url("http://169.254.169.254/latest"),
            &allowed
        ));
        assert!(host_allowed(&url("http://anything/a"), &["*".to_owned()]));
    }

    #[tokio::test]
    async fn the_count_limit_never_removes_a_directory_in_use() {
        let served = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let artifacts = serve_archives(served.path(), &["a", "b"]).await;
        let fetcher = fetcher(cache.path(), 1, u64::MAX);
        let a = fetcher.fetch(&artifacts[0]).await.unwrap();
        let b = fetcher.fetch(&artifacts[1]).await.unwrap();
        assert!(a.path().join("data").is_file());
        assert!(b.path().join("data").is_file());
    }
}
