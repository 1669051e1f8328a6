//! tar.gz archives: one safe extractor (regular files and directories only, nothing outside the
//! target, optional subdirectory and size cap) and one deterministic builder (sorted entries,
//! zeroed owners and times, fixed modes) so the same tree always yields the same digest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// File suffix of every stored and served artifact.
pub const ARCHIVE_SUFFIX: &str = ".tar.gz";

/// Mode of directories in built archives.
const DIR_MODE: u32 = 0o750;
/// Mode of executable files in built archives and of extracted executables.
const EXEC_MODE: u32 = 0o700;
/// Mode of other files in built archives.
const FILE_MODE: u32 = 0o600;
/// Most entries (of any type) one archive may hold: past it unpacking stops, so a flood of
/// empty files or directories cannot exhaust inodes or time.
pub const MAX_ENTRIES: u64 = 100_000;
/// Decompressed bytes allowed beyond the size cap for tar headers and padding.
const HEADER_ALLOWANCE: u64 = 1024 * MAX_ENTRIES + (1 << 20);

/// Reading, building or unpacking an archive failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the tar.gz archive failed: {source}; check it is a valid tar+gzip file")]
    Read { source: io::Error },
    #[error(
        "archive entry {entry} escapes the archive root (absolute path or `..`); refusing to unpack it"
    )]
    UnsafePath { entry: String },
    #[error(
        "unpacked size exceeds the {limit}-byte limit; raise the size limit or shrink the archive"
    )]
    TooLarge { limit: u64 },
    #[error(
        "the archive holds more than {limit} entries; exclude files (e.g. with spec.ignore) or split the source"
    )]
    TooManyEntries { limit: u64 },
    #[error(
        "{path} is a symbolic link or not a directory; refusing to write through it (a repository or archive may not redirect writes outside the target)"
    )]
    LinkInPath { path: String },
    #[error("{action} {path} failed: {source}; check free space and permissions")]
    Io {
        action: &'static str,
        path: String,
        source: io::Error,
    },
}

impl ArchiveError {
    /// The underlying I/O error, if any (e.g. to detect a writer's own size limit).
    pub fn io_source(&self) -> Option<&io::Error> {
        match self {
            Self::Read { source } | Self::Io { source, .. } => Some(source),
            Self::UnsafePath { .. }
            | Self::TooLarge { .. }
            | Self::TooManyEntries { .. }
            | Self::LinkInPath { .. } => None,
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.display().to_string();
    move |source| ArchiveError::Io {
        action,
        path,
        source,
    }
}

fn read_error(source: io::Error) -> ArchiveError {
    ArchiveError::Read { source }
}

/// What to do with an entry whose path is absolute or contains `..`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnsafeEntries {
    /// Fail with [`ArchiveError::UnsafePath`].
    #[default]
    Error,
    /// Leave the entry out and continue.
    Skip,
}

/// How to extract an archive.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions<'a> {
    /// Extract only this subdirectory (its contents land at the target root); `None` for all.
    pub subdir: Option<&'a str>,
    /// Largest total size of extracted regular files, in bytes.
    pub max_size: Option<u64>,
    /// Policy for entries that would escape the target.
    pub unsafe_entries: UnsafeEntries,
}

/// `path` without `.` components, or `None` if it is absolute or contains `..`.
pub fn safe_relative_path(path: &Path) -> Option<PathBuf> {
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

/// A reader that fails once more than `budget` bytes were read through it.
struct Budgeted<R> {
    inner: R,
    budget: u64,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.budget = self
            .budget
            .checked_sub(read as u64)
            .ok_or_else(|| io::Error::other(BudgetExceeded))?;
        Ok(read)
    }
}

/// Marker carried inside `io::Error` when the decompressed-bytes budget is spent.
#[derive(Debug)]
struct BudgetExceeded;

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size budget exceeded")
    }
}

impl std::error::Error for BudgetExceeded {}

/// The decompressed stream entries are read from.
type Decompressed<R> = Budgeted<GzDecoder<R>>;

/// Walks the selected, safe regular-file and directory entries of a tar.gz stream, passing each
/// entry's path relative to the selected subdirectory (never empty). Every decompressed byte
/// counts against the size cap (headers allowed for) and every entry against [`MAX_ENTRIES`].
fn walk<R: Read>(
    reader: R,
    options: &ExtractOptions<'_>,
    mut visit: impl FnMut(&Path, bool, &mut tar::Entry<'_, Decompressed<R>>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let prefix: PathBuf = options
        .subdir
        .unwrap_or_default()
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let limit = options.max_size.unwrap_or(u64::MAX);
    let budget = limit.saturating_add(HEADER_ALLOWANCE);
    let mut archive = tar::Archive::new(Budgeted {
        inner: GzDecoder::new(reader),
        budget,
    });
    let stream_error = |source: io::Error| match source.get_ref() {
        Some(inner) if inner.is::<BudgetExceeded>() => ArchiveError::TooLarge { limit },
        _ => ArchiveError::Read { source },
    };
    let (mut total, mut count) = (0u64, 0u64);
    for entry in archive.entries().map_err(stream_error)? {
        let mut entry = entry.map_err(stream_error)?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries { limit: MAX_ENTRIES });
        }
        total = total.saturating_add(entry.size());
        if total > limit {
            return Err(ArchiveError::TooLarge { limit });
        }
        let path = entry.path().map_err(read_error)?.into_owned();
        let Some(clean) = safe_relative_path(&path) else {
            match options.unsafe_entries {
                UnsafeEntries::Skip => continue,
                UnsafeEntries::Error => {
                    return Err(ArchiveError::UnsafePath {
                        entry: path.display().to_string(),
                    });
                }
            }
        };
        let Ok(relative) = clean.strip_prefix(&prefix) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let entry_type = entry.header().entry_type();
        let is_dir = entry_type.is_dir();
        if !(is_dir || entry_type.is_file()) {
            tracing::debug!(entry = %relative.display(), "skipping non-regular archive entry");
            continue;
        }
        let relative = relative.to_path_buf();
        visit(&relative, is_dir, &mut entry).map_err(|error| match error {
            ArchiveError::Io { source, .. } | ArchiveError::Read { source }
                if source
                    .get_ref()
                    .is_some_and(|inner| inner.is::<BudgetExceeded>()) =>
            {
                ArchiveError::TooLarge { limit }
            }
            other => other,
        })?;
    }
    Ok(())
}

/// Creates `root/relative` one component at a time and returns it, refusing any component that
/// exists as a symbolic link or a non-directory, so no write below it can leave `root`. Blocking.
pub fn create_dir_within(root: &Path, relative: &Path) -> Result<PathBuf, ArchiveError> {
    let relative = safe_relative_path(relative).ok_or_else(|| ArchiveError::UnsafePath {
        entry: relative.display().to_string(),
    })?;
    let mut path = root.to_path_buf();
    for component in relative.components() {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(ArchiveError::LinkInPath {
                    path: path.display().to_string(),
                });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&path).map_err(io_error("creating", &path))?;
            }
            Err(error) => return Err(io_error("inspecting", &path)(error)),
        }
    }
    Ok(path)
}

/// Opens `path` for writing as a new regular file: an existing regular file is replaced, an
/// existing link or directory is refused (exclusive creation never follows a link).
fn create_file_no_follow(path: &Path) -> Result<File, ArchiveError> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => {
            std::fs::remove_file(path).map_err(io_error("replacing", path))?;
        }
        Ok(_) => {
            return Err(ArchiveError::LinkInPath {
                path: path.display().to_string(),
            });
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("inspecting", path)(error)),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("creating", path))
}

/// Unpacks a tar.gz stream into `target`: regular files and directories only (links and other
/// entry types are skipped), honouring `options`. Writes never pass through a symbolic link
/// already on disk under `target`, so extracting into a checkout cannot escape it. Blocking.
pub fn extract_tar_gz(
    reader: impl Read,
    target: &Path,
    options: &ExtractOptions<'_>,
) -> Result<(), ArchiveError> {
    let limit = options.max_size.unwrap_or(u64::MAX);
    match std::fs::symlink_metadata(target) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => {
            return Err(ArchiveError::LinkInPath {
                path: target.display().to_string(),
            });
        }
        Err(_) => std::fs::create_dir_all(target).map_err(io_error("creating", target))?,
    }
    walk(reader, options, |relative, is_dir, entry| {
        if is_dir {
            return create_dir_within(target, relative).map(drop);
        }
        let parent = match relative.parent() {
            Some(parent) => create_dir_within(target, parent)?,
            None => target.to_path_buf(),
        };
        let Some(name) = relative.file_name() else {
            return Ok(());
        };
        let destination = parent.join(name);
        let mut output = create_file_no_follow(&destination)?;
        io::copy(&mut entry.take(limit), &mut output).map_err(io_error("writing", &destination))?;
        if entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0) {
            set_mode(&destination, EXEC_MODE)?;
        }
        Ok(())
    })
}

/// The regular files of a tar.gz stream in memory (path → contents), honouring `options`.
pub fn read_tar_gz(
    reader: impl Read,
    options: &ExtractOptions<'_>,
) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let mut files = BTreeMap::new();
    walk(reader, options, |relative, is_dir, entry| {
        if !is_dir {
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).map_err(read_error)?;
            files.insert(relative.to_string_lossy().into_owned(), contents);
        }
        Ok(())
    })?;
    Ok(files)
}

/// Writes a deterministic tar.gz: entries in the order appended, owners and times zeroed,
/// directories `0750`, files `0600` (`0700` when executable) unless a mode is given.
pub struct ArchiveBuilder<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
}

impl<W: Write> ArchiveBuilder<W> {
    /// A builder compressing into `writer`.
    pub fn new(writer: W) -> Self {
        Self {
            tar: tar::Builder::new(GzEncoder::new(writer, Compression::default())),
        }
    }

    fn header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(entry_type);
        header.set_mode(mode);
        header.set_size(size);
        header
    }

    /// Appends one in-memory regular file at `path` with `mode`.
    pub fn append_bytes(
        &mut self,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), ArchiveError> {
        let mut header = Self::header(tar::EntryType::Regular, mode, contents.len() as u64);
        self.tar
            .append_data(&mut header, path, contents)
            .map_err(io_error("archiving", Path::new(path)))
    }

    /// Appends the tree under `dir` in sorted order, skipping symlinks and special files, and
    /// anything for which `include(relative_path, is_dir)` is false (an excluded directory is
    /// not descended into). Blocking.
    pub fn append_tree(
        &mut self,
        dir: &Path,
        include: &mut dyn FnMut(&str, bool) -> bool,
    ) -> Result<(), ArchiveError> {
        self.append_dir_entries(dir, "", include)
    }

    fn append_dir_entries(
        &mut self,
        dir: &Path,
        relative: &str,
        include: &mut dyn FnMut(&str, bool) -> bool,
    ) -> Result<(), ArchiveError> {
        let mut entries = std::fs::read_dir(dir)
            .map_err(io_error("listing", dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_error("listing", dir))?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let file_type = entry
                .file_type()
                .map_err(io_error("inspecting", &entry.path()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            if file_type.is_symlink() || !(file_type.is_dir() || file_type.is_file()) {
                continue;
            }
            let is_dir = file_type.is_dir();
            if !include(&path, is_dir) {
                continue;
            }
            if is_dir {
                let mut header = Self::header(tar::EntryType::Directory, DIR_MODE, 0);
                self.tar
                    .append_data(&mut header, format!("{path}/"), io::empty())
                    .map_err(io_error("archiving", &entry.path()))?;
                self.append_dir_entries(&entry.path(), &path, include)?;
            } else {
                let meta = entry
                    .metadata()
                    .map_err(io_error("inspecting", &entry.path()))?;
                let mode = if is_executable(&meta) {
                    EXEC_MODE
                } else {
                    FILE_MODE
                };
                let mut header = Self::header(tar::EntryType::Regular, mode, meta.len());
                let file = File::open(entry.path()).map_err(io_error("opening", &entry.path()))?;
                self.tar
                    .append_data(&mut header, &path, file)
                    .map_err(io_error("archiving", &entry.path()))?;
            }
        }
        Ok(())
    }

    /// Writes the tar trailer, flushes the compressor and returns the writer.
    pub fn finish(self) -> Result<W, ArchiveError> {
        let gz = self
            .tar
            .into_inner()
            .map_err(io_error("finishing", Path::new("archive")))?;
        gz.finish()
            .map_err(io_error("compressing", Path::new("archive")))
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Sets the permission bits of `path` (no-op off Unix).
#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> Result<(), ArchiveError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("setting permissions on", path))
}

/// Sets the permission bits of `path` (no-op off Unix).
#[cfg(not(unix))]
pub fn set_mode(_: &Path, _: u32) -> Result<(), ArchiveError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tarball(entries: &[(&str, &[u8])], symlink: Option<(&str, &str)>) -> Vec<u8> {
        let encoder = GzEncoder::new(Vec::new(), Compression::default());
        let mut builder = tar::Builder::new(encoder);
        for (name, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // `append_data` refuses `..`; write the raw name to build hostile archives.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, *body).unwrap();
        }
        if let Some((name, target)) = symlink {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, name, target).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn extract_into(target: &Path, archive: &[u8]) -> Result<(), ArchiveError> {
        extract_tar_gz(archive, target, &ExtractOptions::default())
    }

    #[test]
    fn never_writes_through_a_symlinked_directory_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        let target = dir.path().join("checkout");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("evil")).unwrap();
        let archive = tarball(&[("evil/pwned.yaml", b"x")], None);
        let error = extract_into(&target, &archive).unwrap_err();
        assert!(matches!(error, ArchiveError::LinkInPath { .. }), "{error}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn never_overwrites_a_file_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        let target = dir.path().join("checkout");
        std::fs::write(&victim, b"keep").unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&victim, target.join("a.yaml")).unwrap();
        let archive = tarball(&[("a.yaml", b"overwritten")], None);
        assert!(matches!(
            extract_into(&target, &archive),
            Err(ArchiveError::LinkInPath { .. })
        ));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn refuses_a_symlinked_target_and_replaces_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let archive = tarball(&[("a.yaml", b"new")], None);
        assert!(extract_into(&link, &archive).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        let target = dir.path().join("real");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("a.yaml"), b"old").unwrap();
        extract_into(&target, &archive).unwrap();
        assert_eq!(std::fs::read(target.join("a.yaml")).unwrap(), b"new");
    }

    #[test]
    fn create_dir_within_refuses_links_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/b")).unwrap();
        assert!(create_dir_within(&root, Path::new("a/b/deep/c")).is_err());
        assert!(!outside.join("deep/c").exists());
        let made = create_dir_within(&root, Path::new("a/x/y")).unwrap();
        assert!(made.is_dir());
        assert!(create_dir_within(&root, Path::new("../escape")).is_err());
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

    #[test]
    fn traversal_is_an_error_or_skipped_by_policy() {
        let bytes = tarball(&[("ok.yaml", b"ok"), ("../evil", b"x")], None);
        let out = tempfile::tempdir().unwrap();
        let error =
            extract_tar_gz(bytes.as_slice(), out.path(), &ExtractOptions::default()).unwrap_err();
        assert!(matches!(error, ArchiveError::UnsafePath { .. }), "{error}");
        let skip = ExtractOptions {
            unsafe_entries: UnsafeEntries::Skip,
            ..ExtractOptions::default()
        };
        extract_tar_gz(bytes.as_slice(), out.path(), &skip).unwrap();
        assert!(out.path().join("ok.yaml").is_file());
        assert!(!out.path().parent().unwrap().join("evil").exists());
    }

    #[test]
    fn unpacks_files_and_skips_symlinks() {
        let bytes = tarball(
            &[("deploy/app.yaml", b"kind: x\n")],
            Some(("link", "/etc/passwd")),
        );
        let out = tempfile::tempdir().unwrap();
        extract_tar_gz(bytes.as_slice(), out.path(), &ExtractOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("deploy/app.yaml")).unwrap(),
            "kind: x\n"
        );
        assert!(!out.path().join("link").exists());
    }

    #[test]
    fn enforces_the_size_cap() {
        let bytes = tarball(&[("big", &[0u8; 2048])], None);
        let out = tempfile::tempdir().unwrap();
        let options = ExtractOptions {
            max_size: Some(1024),
            ..ExtractOptions::default()
        };
        let error = extract_tar_gz(bytes.as_slice(), out.path(), &options).unwrap_err();
        assert!(
            matches!(error, ArchiveError::TooLarge { limit: 1024 }),
            "{error}"
        );
        assert!(error.to_string().contains("limit"), "{error}");
    }

    #[test]
    fn counts_bytes_hidden_in_non_file_entries() {
        let encoder = GzEncoder::new(Vec::new(), Compression::default());
        let mut builder = tar::Builder::new(encoder);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(4096);
        header.set_mode(0o755);
        builder
            .append_data(&mut header, "dir/", &[0u8; 4096][..])
            .unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let out = tempfile::tempdir().unwrap();
        let options = ExtractOptions {
            max_size: Some(1024),
            ..ExtractOptions::default()
        };
        let error = extract_tar_gz(bytes.as_slice(), out.path(), &options).unwrap_err();
        assert!(
            matches!(error, ArchiveError::TooLarge { limit: 1024 }),
            "{error}"
        );
    }

    #[test]
    fn caps_the_number_of_entries() {
        let encoder = GzEncoder::new(Vec::new(), Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        for index in 0..=MAX_ENTRIES {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(0);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, format!("f{index}"), io::empty())
                .unwrap();
        }
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let error = read_tar_gz(bytes.as_slice(), &ExtractOptions::default()).unwrap_err();
        assert!(
            matches!(error, ArchiveError::TooManyEntries { limit: MAX_ENTRIES }),
            "{error}"
        );
    }

    #[test]
    fn selects_a_subdirectory() {
        let bytes = tarball(&[("deploy/app.yaml", b"a"), ("other.txt", b"o")], None);
        let options = ExtractOptions {
            subdir: Some("./deploy/"),
            ..ExtractOptions::default()
        };
        let files = read_tar_gz(bytes.as_slice(), &options).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["app.yaml"]);
    }

    fn build(files: &BTreeMap<String, Vec<u8>>, reverse: bool) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut entries: Vec<_> = files.iter().collect();
        if reverse {
            entries.reverse();
        }
        for (path, contents) in entries {
            let target = dir.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, contents).unwrap();
        }
        let mut builder = ArchiveBuilder::new(Vec::new());
        builder.append_tree(dir.path(), &mut |_, _| true).unwrap();
        builder.finish().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn builds_are_deterministic_and_round_trip(
            files in prop::collection::btree_map("[a-z]{1,6}\\.yaml", prop::collection::vec(any::<u8>(), 0..128), 1..8)
        ) {
            let a = build(&files, false);
            let b = build(&files, true);
            prop_assert_eq!(&a, &b);
            let read = read_tar_gz(a.as_slice(), &ExtractOptions::default()).unwrap();
            prop_assert_eq!(read, files);
        }
    }

    #[test]
    fn filter_excludes_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.yaml"), "k").unwrap();
        std::fs::write(dir.path().join("drop.png"), "p").unwrap();
        let mut builder = ArchiveBuilder::new(Vec::new());
        builder
            .append_tree(dir.path(), &mut |path, _| !path.ends_with(".png"))
            .unwrap();
        let bytes = builder.finish().unwrap();
        let files = read_tar_gz(bytes.as_slice(), &ExtractOptions::default()).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["keep.yaml"]);
    }
}
