//! Artifact storage: deterministic tar.gz archives named by their sha256 digest under
//! `<root>/<kind>/<namespace>/<name>/`, written atomically, re-verified and garbage collected.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use sluice_artifact::archive::{
    ARCHIVE_SUFFIX, ArchiveBuilder, ArchiveError, ExtractOptions, UnsafeEntries, create_dir_within,
    extract_tar_gz, set_mode,
};
use sluice_artifact::serve::{ArtifactRoot, resolve_within};

use crate::ignore::IgnoreRules;

/// Prefix of in-progress files; never served, removed by GC once stale.
const TEMP_PREFIX: &str = ".tmp-";

/// Storage settings, from `--storage-*` and `--artifact-*` flags.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Directory holding all artifacts.
    pub root: PathBuf,
    /// Host (or URL with scheme) other controllers download from.
    pub advertised_address: String,
    /// Superseded artifacts younger than this may be kept.
    pub retention_ttl: Duration,
    /// How many artifacts (current included) to keep per object.
    pub retention_records: usize,
    /// Largest compressed artifact accepted, in bytes.
    pub max_artifact_size: u64,
}

/// A storage operation failed; the message names the path and the remedy.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("creating storage directory {path} failed: {source}; check --storage-path is writable")]
    CreateDir { path: String, source: io::Error },
    #[error(
        "{action} {path} failed: {source}; check free space and permissions under --storage-path"
    )]
    Io {
        action: &'static str,
        path: String,
        source: io::Error,
    },
    #[error(
        "artifact exceeds the maximum size of {limit} bytes; exclude files with spec.ignore or raise --max-artifact-size"
    )]
    TooLarge { limit: u64 },
    #[error("invalid storage path {0:?}: it must be relative and must not leave the storage root")]
    InvalidPath(String),
    #[error(
        "artifact {path} was written with digest {expected} but reads back as {actual}; the storage volume may be failing"
    )]
    IntegrityMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.display().to_string();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

/// A file stored for an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Path relative to the storage root, `/`-separated.
    pub path: String,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    /// File size in bytes.
    pub size: u64,
}

/// The artifact store on local disk.
#[derive(Debug, Clone)]
pub struct Storage {
    config: StorageConfig,
}

impl Storage {
    /// Opens (and creates) the storage root.
    pub fn new(config: StorageConfig) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&config.root).map_err(|source| StorageError::CreateDir {
            path: config.root.display().to_string(),
            source,
        })?;
        Ok(Self { config })
    }

    /// The storage root directory.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// The configured size limit in bytes.
    pub fn max_artifact_size(&self) -> u64 {
        self.config.max_artifact_size
    }

    /// `<kind>/<namespace>/<name>`, the directory of one object's artifacts.
    pub fn object_dir(kind: &str, namespace: &str, name: &str) -> String {
        format!("{}/{namespace}/{name}", kind.to_lowercase())
    }

    /// The download URL of a stored path: `http://<adv-addr>/<path>`, or `<adv-addr>/<path>` when
    /// the advertised address carries a scheme.
    pub fn url_for(&self, path: &str) -> String {
        let address = self.config.advertised_address.trim_end_matches('/');
        if address.contains("://") {
            format!("{address}/{path}")
        } else {
            format!("http://{address}/{path}")
        }
    }

    /// The absolute location of a relative storage path, refusing anything that escapes the root.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, StorageError> {
        resolve_within(&self.config.root, path)
            .ok_or_else(|| StorageError::InvalidPath(path.to_owned()))
    }

    /// Archives `source_dir` (minus excluded paths and symlinks) into the object's directory.
    /// Blocking: call from `spawn_blocking`.
    pub fn archive_dir(
        &self,
        source_dir: &Path,
        rules: &IgnoreRules,
        object_dir: &str,
    ) -> Result<StoredFile, StorageError> {
        let limit = self.config.max_artifact_size;
        self.write_atomically(object_dir, |file| {
            let mut builder = ArchiveBuilder::new(LimitedHashWriter::new(file, limit));
            builder
                .append_tree(source_dir, &mut |path, is_dir| {
                    !rules.is_excluded(path, is_dir)
                })
                .map_err(|e| map_archive_error(e, limit))?;
            let counted = builder.finish().map_err(|e| map_archive_error(e, limit))?;
            Ok(counted.finish())
        })
    }

    /// Stores the bytes of `reader` as-is (e.g. a copied OCI layer). Blocking.
    pub fn store_stream(
        &self,
        reader: &mut dyn Read,
        object_dir: &str,
    ) -> Result<StoredFile, StorageError> {
        let limit = self.config.max_artifact_size;
        self.write_atomically(object_dir, |file| {
            let mut counted = LimitedHashWriter::new(file, limit);
            io::copy(reader, &mut counted).map_err(|e| map_write_error(e, limit))?;
            Ok(counted.finish())
        })
    }

    fn write_atomically(
        &self,
        object_dir: &str,
        write: impl FnOnce(&mut File) -> Result<(String, u64), StorageError>,
    ) -> Result<StoredFile, StorageError> {
        let dir = self.resolve(object_dir)?;
        std::fs::create_dir_all(&dir).map_err(|source| StorageError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(io_error("creating a temporary file in", &dir))?;
        let (hex, size) = write(temp.as_file_mut())?;
        temp.as_file()
            .sync_all()
            .map_err(io_error("syncing", temp.path()))?;
        set_private_mode(temp.path())?;
        let file_name = format!("{hex}{ARCHIVE_SUFFIX}");
        let target = dir.join(&file_name);
        temp.persist(&target)
            .map_err(|e| io_error("renaming into", &target)(e.error))?;
        let digest = format!("sha256:{hex}");
        let path = format!("{object_dir}/{file_name}");
        let actual = self.digest_of(&path)?;
        if actual != digest {
            let _ = std::fs::remove_file(&target);
            return Err(StorageError::IntegrityMismatch {
                path,
                expected: digest,
                actual,
            });
        }
        Ok(StoredFile { path, digest, size })
    }

    /// `sha256:<hex>` of a stored file. Blocking.
    pub fn digest_of(&self, path: &str) -> Result<String, StorageError> {
        let absolute = self.resolve(path)?;
        sluice_artifact::digest::sha256_file(&absolute).map_err(io_error("reading", &absolute))
    }

    /// Whether the stored file exists as a regular file with the expected digest. Blocking.
    pub fn verify(&self, path: &str, digest: &str) -> Result<bool, StorageError> {
        let absolute = self.resolve(path)?;
        match std::fs::symlink_metadata(&absolute) {
            Ok(meta) if meta.is_file() => Ok(self.digest_of(path)? == digest),
            Ok(_) => Ok(false),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error("inspecting", &absolute)(error)),
        }
    }

    /// Removes one stored file if present. Blocking.
    pub fn remove(&self, path: &str) -> Result<(), StorageError> {
        let absolute = self.resolve(path)?;
        match std::fs::remove_file(&absolute) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(io_error("removing", &absolute)(error))
            }
            _ => Ok(()),
        }
    }

    /// Deletes superseded files of an object: all but the newest `--artifact-retention-records`
    /// (the current one always kept), and any older than `--artifact-retention-ttl`.
    /// Returns the removed paths. Blocking.
    pub fn garbage_collect(
        &self,
        object_dir: &str,
        current: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        let dir = self.resolve(object_dir)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("listing", &dir)(error)),
        };
        let now = SystemTime::now();
        let mut candidates = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{object_dir}/{name}");
            if Some(path.as_str()) == current {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(io_error("inspecting", &entry.path()))?;
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            candidates.push((modified, path, name.starts_with(TEMP_PREFIX)));
        }
        candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.0));
        let keep_others = self
            .config
            .retention_records
            .saturating_sub(usize::from(current.is_some()));
        let mut removed = Vec::new();
        let mut kept = 0;
        for (modified, path, temporary) in candidates {
            let age = now.duration_since(modified).unwrap_or_default();
            let expired = age > self.config.retention_ttl;
            if temporary {
                if expired {
                    self.remove(&path)?;
                    removed.push(path);
                }
                continue;
            }
            if kept < keep_others && !expired {
                kept += 1;
                continue;
            }
            self.remove(&path)?;
            removed.push(path);
        }
        Ok(removed)
    }

    /// Removes every file of an object (finalizer). Blocking.
    pub fn remove_object(&self, object_dir: &str) -> Result<(), StorageError> {
        let dir = self.resolve(object_dir)?;
        match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                Err(io_error("removing", &dir)(error))
            }
            _ => Ok(()),
        }
    }

    /// Unpacks a stored archive's `from` subdirectory (root when `None`) into `target`,
    /// skipping links and anything that would escape `target`. Blocking.
    pub fn extract(
        &self,
        path: &str,
        from: Option<&str>,
        target: &Path,
    ) -> Result<(), StorageError> {
        let absolute = self.resolve(path)?;
        let file = File::open(&absolute).map_err(io_error("opening", &absolute))?;
        let options = ExtractOptions {
            subdir: from,
            max_size: Some(self.max_artifact_size()),
            unsafe_entries: UnsafeEntries::Skip,
        };
        Ok(extract_tar_gz(file, target, &options)?)
    }

    /// Unpacks the stored archive at `path` (or its `from` subdirectory) into `root/to`, refusing
    /// any symbolic link already on the way, so a checkout's links cannot redirect the copy. Blocking.
    pub fn extract_within(
        &self,
        path: &str,
        from: Option<&str>,
        root: &Path,
        to: &str,
    ) -> Result<(), StorageError> {
        let target = create_dir_within(root, Path::new(to))?;
        self.extract(path, from, &target)
    }
}

impl ArtifactRoot for Storage {
    fn root(&self) -> &Path {
        &self.config.root
    }
}

fn set_private_mode(path: &Path) -> Result<(), StorageError> {
    Ok(set_mode(path, 0o600)?)
}

/// Marker carried inside `io::Error` when the size limit is hit.
#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("size limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

fn is_limit_exceeded(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<LimitExceeded>())
}

fn map_write_error(error: io::Error, limit: u64) -> StorageError {
    if is_limit_exceeded(&error) {
        StorageError::TooLarge { limit }
    } else {
        StorageError::Io {
            action: "writing",
            path: "artifact".to_owned(),
            source: error,
        }
    }
}

fn map_archive_error(error: ArchiveError, limit: u64) -> StorageError {
    if error.io_source().is_some_and(is_limit_exceeded) {
        StorageError::TooLarge { limit }
    } else {
        StorageError::Archive(error)
    }
}

/// Hashes and counts bytes on their way to a file, failing past `limit`.
struct LimitedHashWriter<'a> {
    inner: &'a mut File,
    hasher: Sha256,
    written: u64,
    limit: u64,
}

impl<'a> LimitedHashWriter<'a> {
    fn new(inner: &'a mut File, limit: u64) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
            limit,
        }
    }

    fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.written)
    }
}

impl Write for LimitedHashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::other(LimitExceeded));
        }
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(root: &Path, records: usize) -> Storage {
        Storage::new(StorageConfig {
            root: root.to_owned(),
            advertised_address: "source-controller.flux-system.svc".to_owned(),
            retention_ttl: Duration::from_secs(3600),
            retention_records: records,
            max_artifact_size: 1024 * 1024,
        })
        .unwrap()
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let target = dir.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, contents).unwrap();
        }
        dir
    }

    #[test]
    fn archive_is_named_by_digest_and_verifies() {
        let root = tempfile::tempdir().unwrap();
        let storage = storage(root.path(), 2);
        let source = tree(&[("a.yaml", "a: 1\n"), ("dir/b.yaml", "b: 2\n")]);
        let stored = storage
            .archive_dir(
                source.path(),
                &IgnoreRules::default(),
                "gitrepository/ns/app",
            )
            .unwrap();
        let hex = stored.digest.strip_prefix("sha256:").unwrap();
        assert_eq!(stored.path, format!("gitrepository/ns/app/{hex}.tar.gz"));
        assert!(storage.verify(&stored.path, &stored.digest).unwrap());
        assert!(!storage.verify(&stored.path, "sha256:00").unwrap());
        assert_eq!(
            storage.url_for(&stored.path),
            format!("http://source-controller.flux-system.svc/{}", stored.path)
        );
    }

    #[test]
    fn archive_skips_symlinks_and_excluded_paths() {
        let root = tempfile::tempdir().unwrap();
        let storage = storage(root.path(), 2);
        let source = tree(&[("keep.yaml", "k"), ("drop.png", "p")]);
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", source.path().join("link")).unwrap();
        let rules = IgnoreRules::for_tree(source.path(), None).unwrap();
        let stored = storage
            .archive_dir(source.path(), &rules, "x/ns/n")
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        storage.extract(&stored.path, None, out.path()).unwrap();
        assert!(out.path().join("keep.yaml").is_file());
        assert!(!out.path().join("drop.png").exists());
        assert!(!out.path().join("link").exists());
    }

    #[test]
    fn size_limit_is_enforced() {
        let root = tempfile::tempdir().unwrap();
        let mut config = storage(root.path(), 2).config;
        config.max_artifact_size = 64;
        let storage = Storage::new(config).unwrap();
        let noise: String = (0..5000)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let source = tree(&[("big.txt", noise.as_str())]);
        let error = storage
            .archive_dir(source.path(), &IgnoreRules::default(), "x/ns/n")
            .unwrap_err();
        assert!(
            matches!(error, StorageError::TooLarge { limit: 64 }),
            "{error}"
        );
        assert!(error.to_string().contains("--max-artifact-size"));
    }

    #[test]
    fn resolve_refuses_traversal() {
        let root = tempfile::tempdir().unwrap();
        let storage = storage(root.path(), 2);
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "",
            "a\\..\\b",
            "./a",
        ] {
            assert!(storage.resolve(bad).is_err(), "{bad}");
        }
        assert!(storage.resolve("gitrepository/ns/n/x.tar.gz").is_ok());
    }

    #[test]
    fn garbage_collection_keeps_newest_records() {
        let root = tempfile::tempdir().unwrap();
        let storage = storage(root.path(), 2);
        let mut stored = Vec::new();
        for content in ["one", "two", "three"] {
            let source = tree(&[("f", content)]);
            stored.push(
                storage
                    .archive_dir(source.path(), &IgnoreRules::default(), "k/ns/n")
                    .unwrap(),
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let removed = storage
            .garbage_collect("k/ns/n", Some(&stored[2].path))
            .unwrap();
        assert_eq!(removed, vec![stored[0].path.clone()]);
        assert!(storage.verify(&stored[1].path, &stored[1].digest).unwrap());
        assert!(storage.verify(&stored[2].path, &stored[2].digest).unwrap());
        storage.remove_object("k/ns/n").unwrap();
        assert!(!root.path().join("k/ns/n").exists());
    }

    #[test]
    fn extract_selects_subdirectory() {
        let root = tempfile::tempdir().unwrap();
        let storage = storage(root.path(), 2);
        let source = tree(&[("deploy/app.yaml", "a"), ("other.txt", "o")]);
        let stored = storage
            .archive_dir(source.path(), &IgnoreRules::default(), "k/ns/n")
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        storage
            .extract(&stored.path, Some("deploy"), out.path())
            .unwrap();
        assert!(out.path().join("app.yaml").is_file());
        assert!(!out.path().join("other.txt").exists());
    }
}
