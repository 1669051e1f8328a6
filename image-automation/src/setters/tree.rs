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
    /// Changed files and their changes, per object; paths are relative to `update.path`, as
    /// the file names of Flux's `.Changed.FileChanges`.
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
        let names = FileNames {
            in_repository: relative_name(&file, root),
            in_update_path: relative_name(&file, &start),
        };
        update_file(&file, names, resolve, &mut update)?;
    }
    Ok(update)
}

/// A file's path relative to the repository root (for reports) and to `update.path`.
struct FileNames {
    in_repository: String,
    in_update_path: String,
}

fn relative_name(file: &Path, base: &Path) -> String {
    file.strip_prefix(base)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

fn update_file(
    file: &Path,
    names: FileNames,
    resolve: &dyn Fn(&Marker) -> Resolution,
    update: &mut TreeUpdate,
) -> Result<(), SetterError> {
    let name = names.in_repository;
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
        update.files.insert(names.in_update_path, result.changes);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_files_are_named_relative_to_the_update_path_reports_to_the_repository() {
        let repo = tempfile::tempdir().unwrap();
        let apps = repo.path().join("clusters/prod/apps");
        std::fs::create_dir_all(&apps).unwrap();
        let marked = "image: old:1 # {\"$imagepolicy\": \"ns:app\"}\n";
        std::fs::write(apps.join("web.yaml"), marked).unwrap();
        std::fs::write(apps.join("gone.yaml"), marked.replace("ns:app", "ns:gone")).unwrap();
        let update = update_tree(repo.path(), "./clusters/prod", &|marker| match marker
            .policy
            .as_str()
        {
            "app" => Resolution::Value("new:2".to_owned()),
            _ => Resolution::Unresolved("not found".to_owned()),
        })
        .unwrap();
        let files: Vec<&str> = update.files.keys().map(String::as_str).collect();
        assert_eq!(files, ["apps/web.yaml"], "as Flux's .Changed.FileChanges");
        assert_eq!(update.unresolved.len(), 1);
        assert_eq!(update.unresolved[0].file, "clusters/prod/apps/gone.yaml");
    }
}
