//! The files Flux's setters read under `update.path` (`*.yaml`, `*.yml`, `Kustomization`, with
//! the `"$imagepolicy"` token), updated in place; unparsable files are reported and skipped.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{Change, Marker, ObjectId, Resolution, SetterError, update_text};

/// Files larger than this are skipped as problem files.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The token a file must contain to be parsed (Flux's screening reader).
const SCREENING_TOKEN: &str = "\"$imagepolicy\"";

/// A marker of this automation that was left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedMarker {
    /// Path relative to the repository root.
    pub file: String,
    pub line: usize,
    pub marker: Marker,
    pub reason: String,
}

/// What an update of a tree changed.
#[derive(Debug, Default)]
pub struct TreeUpdate {
    /// Changed files (relative to the repository root) and their changes, per object.
    pub files: BTreeMap<String, Vec<(ObjectId, Change)>>,
    pub unresolved: Vec<UnresolvedMarker>,
    /// Files that could not be read or parsed, with why; they are left as they are.
    pub problem_files: Vec<(String, String)>,
}

/// Updates every marked file under `root/path` in place.
pub fn update_tree(
    root: &Path,
    path: &str,
    resolve: &dyn Fn(&Marker) -> Resolution,
) -> Result<TreeUpdate, SetterError> {
    let relative = Path::new(path);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(SetterError::InvalidPath(path.to_owned()));
    }
    let start = root.join(relative);
    if !start.is_dir() {
        return Err(SetterError::InvalidPath(path.to_owned()));
    }
    let mut files = Vec::new();
    collect_files(&start, &mut files)?;
    files.sort();
    let mut update = TreeUpdate::default();
    for file in files {
        let name = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        update_file(&file, name, resolve, &mut update)?;
    }
    Ok(update)
}

fn update_file(
    file: &Path,
    name: String,
    resolve: &dyn Fn(&Marker) -> Resolution,
    update: &mut TreeUpdate,
) -> Result<(), SetterError> {
    let io = |source| SetterError::Io {
        path: name.clone(),
        source,
    };
    let size = std::fs::metadata(file).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        update
            .problem_files
            .push((name, format!("larger than {MAX_FILE_BYTES} bytes")));
        return Ok(());
    }
    let bytes = std::fs::read(file).map_err(io)?;
    let Ok(text) = String::from_utf8(bytes) else {
        update.problem_files.push((name, "not UTF-8".to_owned()));
        return Ok(());
    };
    if !text.contains(SCREENING_TOKEN) {
        return Ok(());
    }
    let result = match update_text(&text, resolve) {
        Ok(result) => result,
        Err(error) => {
            update.problem_files.push((name, error.to_string()));
            return Ok(());
        }
    };
    update
        .unresolved
        .extend(
            result
                .unresolved
                .into_iter()
                .map(|(line, marker, reason)| UnresolvedMarker {
                    file: name.clone(),
                    line,
                    marker,
                    reason,
                }),
        );
    if let Some(new_text) = result.text {
        std::fs::write(file, new_text).map_err(io)?;
        update.files.insert(name, result.changes);
    }
    Ok(())
}

/// Regular files Flux's reader considers, never following symlinks or entering `.git`.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), SetterError> {
    let io = |source| SetterError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() && name != ".git" {
            collect_files(&entry.path(), files)?;
        } else if kind.is_file()
            && (name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization")
        {
            files.push(entry.path());
        }
    }
    Ok(())
}
