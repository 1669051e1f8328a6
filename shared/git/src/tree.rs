//! Writing a commit's tree to a directory as `git checkout` does for a fresh clone: files
//! 0644 or 0755, symbolic links, nested directories and empty directories for submodules.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pack::{Kind, ObjectId, Objects};

/// At most this many directories deep.
const MAX_DEPTH: usize = 256;
/// At most this many entries and file bytes written (a tree may repeat a subtree).
const MAX_ENTRIES: usize = 500_000;
const MAX_BYTES: usize = 1 << 30;
/// `.gitattributes` words that change checked-out contents; such trees are left to `git`.
const CONTENT_ATTRIBUTES: &[&str] = &["eol", "text", "crlf", "ident", "filter", "encoding"];

/// Why a tree is not written in process; the checkout then falls back to the `git` CLI.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TreeError {
    #[error("object {0} is missing from the pack")]
    Missing(String),
    #[error("malformed tree {0}")]
    Malformed(String),
    #[error("tree entry '{0}' is left to git")]
    Unusual(String),
    #[error("writing '{path}' failed: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One entry to write, relative to the checkout root.
enum Planned {
    Dir(PathBuf),
    File(PathBuf, ObjectId, bool),
    Symlink(PathBuf, ObjectId),
}

/// Writes the tree `root` into `dir`, which must be absent or empty. Blocking.
pub(crate) fn write(objects: &Objects, root: &ObjectId, dir: &Path) -> Result<(), TreeError> {
    let mut plan = Vec::new();
    walk(objects, root, Path::new(""), 0, &mut plan)?;
    let bytes = plan.iter().try_fold(0usize, |total, entry| match entry {
        Planned::File(_, id, _) => Ok(total.saturating_add(blob(objects, id)?.len())),
        _ => Ok(total),
    })?;
    if bytes > MAX_BYTES {
        return Err(TreeError::Unusual("the whole tree, too large".to_owned()));
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TreeError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for entry in plan {
        match entry {
            Planned::Dir(path) => std::fs::create_dir(dir.join(&path)).map_err(io(&path))?,
            Planned::File(path, id, executable) => {
                let mut options = OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(
                    &mut options,
                    if executable { 0o755 } else { 0o644 },
                );
                let mut file = options.open(dir.join(&path)).map_err(io(&path))?;
                file.write_all(blob(objects, &id)?).map_err(io(&path))?;
            }
            Planned::Symlink(path, id) => {
                symlink(blob(objects, &id)?, &dir.join(&path)).map_err(io(&path))?
            }
        }
    }
    Ok(())
}

/// Plans the entries of tree `id` at `prefix`, parents before children.
fn walk(
    objects: &Objects,
    id: &ObjectId,
    prefix: &Path,
    depth: usize,
    plan: &mut Vec<Planned>,
) -> Result<(), TreeError> {
    let malformed = || TreeError::Malformed(hex::encode(id));
    let Some((Kind::Tree, mut data)) = objects.get(id).map(|(k, d)| (*k, d.as_slice())) else {
        return Err(TreeError::Missing(hex::encode(id)));
    };
    if depth > MAX_DEPTH || data.is_empty() {
        return Err(TreeError::Unusual(prefix.display().to_string()));
    }
    while !data.is_empty() {
        if plan.len() > MAX_ENTRIES {
            return Err(TreeError::Unusual(
                "the whole tree, too many entries".to_owned(),
            ));
        }
        let space = data.iter().position(|b| *b == b' ').ok_or_else(malformed)?;
        let nul = data.iter().position(|b| *b == 0).ok_or_else(malformed)?;
        let entry_id: ObjectId = data
            .get(nul + 1..nul + 21)
            .and_then(|s| s.try_into().ok())
            .filter(|_| space < nul)
            .ok_or_else(malformed)?;
        let (mode, name) = (&data[..space], &data[space + 1..nul]);
        data = &data[nul + 21..];
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| safe_name(n))
            .ok_or_else(|| TreeError::Unusual(String::from_utf8_lossy(name).into_owned()))?;
        let path = prefix.join(name);
        match mode {
            b"40000" => {
                plan.push(Planned::Dir(path.clone()));
                walk(objects, &entry_id, &path, depth + 1, plan)?;
            }
            b"100644" | b"100664" => plan.push(Planned::File(path, entry_id, false)),
            b"100755" => plan.push(Planned::File(path, entry_id, true)),
            b"120000" => plan.push(Planned::Symlink(path, entry_id)),
            b"160000" => plan.push(Planned::Dir(path)),
            _ => return Err(TreeError::Unusual(path.display().to_string())),
        }
        if name == ".gitattributes" && changes_contents(blob(objects, &entry_id)?) {
            return Err(TreeError::Unusual(prefix.join(name).display().to_string()));
        }
    }
    Ok(())
}

/// A single path component git itself would check out on any platform.
fn safe_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches(['.', ' ']);
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || trimmed == ".git"
        || trimmed == "git~1")
}

/// Whether `.gitattributes` contents may convert line endings, expand keywords or run filters.
fn changes_contents(attributes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(attributes);
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .any(|line| CONTENT_ATTRIBUTES.iter().any(|word| line.contains(word)))
}

fn blob<'a>(objects: &'a Objects, id: &ObjectId) -> Result<&'a [u8], TreeError> {
    match objects.get(id) {
        Some((Kind::Blob, data)) => Ok(data),
        _ => Err(TreeError::Missing(hex::encode(id))),
    }
}

#[cfg(unix)]
fn symlink(target: &[u8], link: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), link)
}

#[cfg(not(unix))]
fn symlink(target: &[u8], link: &Path) -> std::io::Result<()> {
    std::fs::write(link, target)
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
