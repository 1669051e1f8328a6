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
    /// Unpacked artifacts kept in the cache; older ones are removed.
    pub max_cached: usize,
    /// The caller's server and flags, named in errors.
    pub hints: &'static FetchHints,
}

/// Downloads artifacts and keeps them unpacked by digest, so an unchanged revision is reused.
pub struct ArtifactFetcher {
    downloader: Downloader,
    options: FetchOptions,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    recent: Mutex<Vec<String>>,
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
        }
    }

    /// The unpacked directory of `artifact`, downloading and unpacking it when not cached.
    pub async fn fetch(&self, artifact: &Artifact) -> Result<PathBuf, FetchError> {
        let expected = parse_expected(&artifact.digest)?;
        let key = format!("{}-{}", expected.algorithm, expected.hex);
        let target = self.options.cache_dir.join(&key);
        let lock = self.lock_for(&key);
        let _guard = lock.lock().await;
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            self.touch(&key);
            return Ok(target);
        }
        let url = resolve_url(&artifact.url)?;
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
        tokio::task::spawn_blocking(move || {
            unpack(&archive_path, &unpack_path, max_size, hints, &url_text)
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
        self.touch(&key);
        self.evict().await;
        Ok(target)
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.retain(|_, lock| Arc::strong_count(lock) > 1);
        in_flight.entry(key.to_owned()).or_default().clone()
    }

    fn touch(&self, key: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|existing| existing != key);
        recent.push(key.to_owned());
    }

    async fn evict(&self) {
        let stale: Vec<String> = {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            let excess = recent.len().saturating_sub(self.options.max_cached);
            recent.drain(..excess).collect()
        };
        for key in stale {
            let lock = self.lock_for(&key);
            let _guard = lock.lock().await;
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
}
