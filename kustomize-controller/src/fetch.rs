//! Downloading a source artifact, verifying its digest and unpacking it safely, cached by digest.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest as _, Sha256, Sha384, Sha512};
use sluice_api::meta::Artifact;

/// Environment variable that replaces the host of artifact URLs (Flux's `SOURCE_CONTROLLER_LOCALHOST`).
pub const SOURCE_HOST_OVERRIDE_ENV: &str = "SOURCE_CONTROLLER_LOCALHOST";

/// Fetching or unpacking an artifact failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "artifact {url} not found (HTTP 404); the source has not stored it yet, retrying after --requeue-dependency"
    )]
    NotFound { url: String },
    #[error(
        "downloading artifact {url} failed with HTTP {status}; check source-controller is serving it"
    )]
    HttpStatus { url: String, status: u16 },
    #[error("downloading artifact {url} failed: {reason}; check source-controller is reachable")]
    Transport { url: String, reason: String },
    #[error("artifact URL {url:?} is invalid: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "artifact {url} is larger than the {limit}-byte limit; raise --artifact-max-size or shrink the source"
    )]
    TooLarge { url: String, limit: u64 },
    #[error("artifact digest {digest:?} is invalid: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error(
        "artifact {url} failed digest verification: expected {expected}, got {actual}; the file changed after the source recorded it"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("artifact {url} is not a valid tar.gz archive: {reason}")]
    InvalidArchive { url: String, reason: String },
    #[error(
        "caching artifact {url} in {dir} failed: {source}; check the cache directory is writable"
    )]
    Cache {
        url: String,
        dir: String,
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the source has no artifact to serve yet (a 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Digest algorithms source-controller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

/// A parsed `<algorithm>:<hex>` digest; a bare hex value means sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExpectedDigest {
    algorithm: Algorithm,
    hex: String,
}

impl ExpectedDigest {
    fn parse(digest: &str) -> Result<Self, FetchError> {
        let invalid = |reason: &str| FetchError::InvalidDigest {
            digest: digest.to_owned(),
            reason: reason.to_owned(),
        };
        let (algorithm, hex) = match digest.split_once(':') {
            Some((algorithm, hex)) => (algorithm, hex),
            None => ("sha256", digest),
        };
        let (algorithm, length) = match algorithm {
            "sha256" => (Algorithm::Sha256, 64),
            "sha384" => (Algorithm::Sha384, 96),
            "sha512" => (Algorithm::Sha512, 128),
            _ => {
                return Err(invalid(
                    "unsupported algorithm; expected sha256, sha384 or sha512",
                ));
            }
        };
        if hex.len() != length || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(invalid("the checksum is not hex of the algorithm's length"));
        }
        Ok(Self {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }

    fn cache_key(&self) -> String {
        let algorithm = match self.algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        };
        format!("{algorithm}-{}", self.hex)
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
            Algorithm::Sha384 => Self::Sha384(Sha384::new()),
            Algorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha384(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Sha256(hasher) => hex::encode(hasher.finalize()),
            Self::Sha384(hasher) => hex::encode(hasher.finalize()),
            Self::Sha512(hasher) => hex::encode(hasher.finalize()),
        }
    }
}

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
}

/// Downloads artifacts and keeps them unpacked by digest, so an unchanged revision is reused.
pub struct ArtifactFetcher {
    http: reqwest::Client,
    options: FetchOptions,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    recent: Mutex<Vec<String>>,
}

impl ArtifactFetcher {
    /// A fetcher using `http` for downloads.
    pub fn new(http: reqwest::Client, options: FetchOptions) -> Self {
        Self {
            http,
            options,
            in_flight: Mutex::default(),
            recent: Mutex::default(),
        }
    }

    /// The unpacked directory of `artifact`, downloading and unpacking it when not cached.
    pub async fn fetch(&self, artifact: &Artifact) -> Result<PathBuf, FetchError> {
        let expected = ExpectedDigest::parse(&artifact.digest)?;
        let key = expected.cache_key();
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
        self.download(&url, &expected, &mut file).await?;
        drop(file);
        let unpack_dir = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&self.options.cache_dir)
            .map_err(cache_error)?;
        let max_size = self.options.max_size;
        let archive_path = download_path.to_path_buf();
        let unpack_path = unpack_dir.path().to_path_buf();
        let url_text = url.to_string();
        tokio::task::spawn_blocking(move || {
            unpack(&archive_path, &unpack_path, max_size, &url_text)
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

    async fn download(
        &self,
        url: &reqwest::Url,
        expected: &ExpectedDigest,
        file: &mut tokio::fs::File,
    ) -> Result<(), FetchError> {
        use tokio::io::AsyncWriteExt;
        let mut attempt = 0;
        let mut response = loop {
            let outcome = self.http.get(url.clone()).send().await;
            let retryable = match &outcome {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            };
            if retryable && attempt < self.options.retries {
                attempt += 1;
                let delay = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5)));
                tokio::time::sleep(delay.min(Duration::from_secs(5))).await;
                continue;
            }
            break outcome.map_err(|error| FetchError::Transport {
                url: url.to_string(),
                reason: error.without_url().to_string(),
            })?;
        };
        match response.status() {
            status if status.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => {
                return Err(FetchError::NotFound {
                    url: url.to_string(),
                });
            }
            status => {
                return Err(FetchError::HttpStatus {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit: self.options.max_size,
        };
        if response
            .content_length()
            .is_some_and(|length| length > self.options.max_size)
        {
            return Err(too_large());
        }
        let cache_error = |source| FetchError::Cache {
            url: url.to_string(),
            dir: self.options.cache_dir.display().to_string(),
            source,
        };
        let mut hasher = Hasher::new(expected.algorithm);
        let mut received: u64 = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| FetchError::Transport {
                url: url.to_string(),
                reason: error.without_url().to_string(),
            })?
        {
            received = received.saturating_add(chunk.len() as u64);
            if received > self.options.max_size {
                return Err(too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(cache_error)?;
        }
        file.flush().await.map_err(cache_error)?;
        let actual = hasher.finish();
        if actual != expected.hex {
            return Err(FetchError::DigestMismatch {
                url: url.to_string(),
                expected: expected.hex.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// The artifact URL with its host replaced by `SOURCE_CONTROLLER_LOCALHOST` when that is set.
fn resolve_url(url: &str) -> Result<reqwest::Url, FetchError> {
    let invalid = |reason: String| FetchError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut parsed = reqwest::Url::parse(url).map_err(|error| invalid(error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https are supported".to_owned()));
    }
    if let Ok(host) = std::env::var(SOURCE_HOST_OVERRIDE_ENV)
        && !host.is_empty()
    {
        let replacement = reqwest::Url::parse(&format!("{}://{host}", parsed.scheme()))
            .map_err(|error| invalid(format!("{SOURCE_HOST_OVERRIDE_ENV}: {error}")))?;
        parsed
            .set_host(replacement.host_str())
            .map_err(|error| invalid(format!("{SOURCE_HOST_OVERRIDE_ENV}: {error}")))?;
        parsed
            .set_port(replacement.port())
            .map_err(|()| invalid(format!("{SOURCE_HOST_OVERRIDE_ENV}: cannot set port")))?;
    }
    Ok(parsed)
}

/// Unpacks a tar.gz into `into`: regular files and directories only, relative paths without `..`,
/// total size at most `max_size`; symlinks and other entry types are skipped.
fn unpack(archive: &Path, into: &Path, max_size: u64, url: &str) -> Result<(), FetchError> {
    let invalid = |reason: String| FetchError::InvalidArchive {
        url: url.to_owned(),
        reason,
    };
    let file = std::fs::File::open(archive).map_err(|error| invalid(error.to_string()))?;
    if file.metadata().map(|metadata| metadata.len()).unwrap_or(0) == 0 {
        return Err(invalid("the file is empty".to_owned()));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut total: u64 = 0;
    let entries = archive
        .entries()
        .map_err(|error| invalid(error.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| invalid(error.to_string()))?;
        let path = entry
            .path()
            .map_err(|error| invalid(error.to_string()))?
            .into_owned();
        let Some(relative) = safe_relative_path(&path) else {
            return Err(invalid(format!(
                "entry {} escapes the archive root (absolute path or `..`)",
                path.display()
            )));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let destination = into.join(&relative);
        let entry_type = entry.header().entry_type();
        if entry_type.is_dir() {
            std::fs::create_dir_all(&destination).map_err(|error| invalid(error.to_string()))?;
            continue;
        }
        if !entry_type.is_file() {
            tracing::debug!(entry = %relative.display(), "skipping non-regular archive entry");
            continue;
        }
        total = total.saturating_add(entry.size());
        if total > max_size {
            return Err(invalid(format!(
                "unpacked size exceeds the {max_size}-byte limit; raise --artifact-max-size"
            )));
        }
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(|error| invalid(error.to_string()))?;
        }
        let mut output =
            std::fs::File::create(&destination).map_err(|error| invalid(error.to_string()))?;
        let mut limited = (&mut entry).take(max_size);
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let read = limited
                .read(&mut buffer)
                .map_err(|error| invalid(error.to_string()))?;
            if read == 0 {
                break;
            }
            output
                .write_all(&buffer[..read])
                .map_err(|error| invalid(error.to_string()))?;
        }
    }
    Ok(())
}

/// `path` without `.` components, or `None` if it is absolute or contains `..`.
fn safe_relative_path(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digests() {
        let hex = "a".repeat(64);
        let bare = ExpectedDigest::parse(&hex).unwrap();
        assert_eq!(bare.algorithm, Algorithm::Sha256);
        assert_eq!(
            ExpectedDigest::parse(&format!("sha256:{hex}")).unwrap(),
            bare
        );
        assert!(ExpectedDigest::parse("md5:abc").is_err());
        assert!(ExpectedDigest::parse("sha256:xyz").is_err());
        assert_eq!(
            ExpectedDigest::parse(&format!("sha512:{}", "b".repeat(128)))
                .unwrap()
                .algorithm,
            Algorithm::Sha512
        );
    }

    #[test]
    fn rejects_escaping_paths() {
        assert_eq!(
            safe_relative_path(Path::new("./a/b.yaml")),
            Some(PathBuf::from("a/b.yaml"))
        );
        assert_eq!(safe_relative_path(Path::new("../etc/passwd")), None);
        assert_eq!(safe_relative_path(Path::new("a/../../b")), None);
        assert_eq!(safe_relative_path(Path::new("/etc/passwd")), None);
    }

    fn tarball(entries: &[(&str, &[u8])], symlink: Option<(&str, &str)>) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        for (name, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, *body).unwrap();
        }
        if let Some((name, target)) = symlink {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, name, target).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacks_files_and_skips_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(
            &archive,
            tarball(
                &[("deploy/app.yaml", b"kind: x\n")],
                Some(("link", "/etc/passwd")),
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(&archive, &out, 1024, "u").unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("deploy/app.yaml")).unwrap(),
            "kind: x\n"
        );
        assert!(!out.join("link").exists());
    }

    #[test]
    fn enforces_the_size_cap_and_rejects_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(&archive, tarball(&[("big", &[0u8; 2048])], None)).unwrap();
        let error = unpack(&archive, dir.path(), 1024, "u").unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
        std::fs::write(&archive, b"").unwrap();
        let error = unpack(&archive, dir.path(), 1024, "u").unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }
}
