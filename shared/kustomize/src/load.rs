//! Loading files safely: every path must stay inside the build root (and files inside the
//! directory of the kustomization naming them), remote sources are refused, and directories
//! without a kustomization file can get one generated the way Flux does.

use std::cell::Cell;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::resource::scalar_text;
use crate::{BuildLimits, yaml};

/// The names kustomize recognises for a kustomization file, in lookup order.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Reads files under one build root.
pub(crate) struct Loader {
    root: PathBuf,
    limits: BuildLimits,
    deadline: Option<Instant>,
    read: Cell<u64>,
}

/// Where a kustomization's transformers and generators read files from.
pub(crate) struct Context<'a> {
    pub loader: &'a Loader,
    /// The kustomization's directory, which relative paths start from.
    pub dir: &'a Path,
    /// The directory files it names must be inside: its own directory, or with
    /// [`crate::FileAccess::BuildRoot`] the build root.
    pub scope: &'a Path,
    pub file: &'a Path,
}

impl Context<'_> {
    /// Reads a file the kustomization names in `field`.
    pub fn read(&self, reference: &str, field: &str) -> Result<(PathBuf, Vec<u8>)> {
        self.loader
            .read_in(self.dir, self.scope, reference, self.file, field)
    }
}

impl Loader {
    pub fn new(root: &Path) -> Result<Loader> {
        Self::with_limits(root, &BuildLimits::default())
    }

    /// A loader whose reads and checks count against `limits`, its clock starting now.
    pub fn with_limits(root: &Path, limits: &BuildLimits) -> Result<Loader> {
        let root = root.canonicalize().map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(Error::Io {
                path: root,
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(Loader {
            root,
            limits: limits.clone(),
            deadline: limits.timeout.map(|timeout| Instant::now() + timeout),
            read: Cell::new(0),
        })
    }

    /// Fails once the build holds more than its object limit, nests too deep or runs too long.
    pub fn check(&self, objects: usize, depth: usize) -> Result<()> {
        let exceeded = |limit: String| Err(Error::LimitExceeded { limit });
        if objects > self.limits.max_objects {
            return exceeded(format!("{} objects", self.limits.max_objects));
        }
        if depth > self.limits.max_depth {
            return exceeded(format!("{} levels of nested bases", self.limits.max_depth));
        }
        match (self.deadline, self.limits.timeout) {
            (Some(deadline), Some(timeout)) if Instant::now() > deadline => {
                exceeded(format!("its time limit of {timeout:?}"))
            }
            _ => Ok(()),
        }
    }

    /// Reads a file, counting its bytes against the build's read limit.
    pub fn read_counted(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = std::fs::read(path)?;
        let read = self.read.get().saturating_add(bytes.len() as u64);
        self.read.set(read);
        Ok(bytes)
    }

    /// Fails once more bytes were read than the limit allows (or time ran out).
    pub fn check_read(&self) -> Result<()> {
        if self.read.get() > self.limits.max_bytes {
            return Err(Error::LimitExceeded {
                limit: format!("{} bytes read", self.limits.max_bytes),
            });
        }
        self.check(0, 0)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The kustomization file of `dir`, if it has exactly one.
    pub fn kustomization_file(&self, dir: &Path) -> Result<Option<PathBuf>> {
        let found: Vec<PathBuf> = KUSTOMIZATION_FILE_NAMES
            .iter()
            .map(|name| dir.join(name))
            .filter(|p| p.is_file())
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => found
                .into_iter()
                .next()
                .map(|file| self.inside(file))
                .transpose(),
            _ => Err(Error::invalid(
                dir,
                "(directory)",
                "found multiple kustomization files",
            )),
        }
    }

    /// `file` itself when it resolves inside the root: a symbolic link pointing out is refused.
    fn inside(&self, file: PathBuf) -> Result<PathBuf> {
        let resolved = file.canonicalize().map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        if !resolved.starts_with(&self.root) {
            return Err(Error::OutsideRoot {
                field: "(kustomization file)".to_string(),
                file,
                path: resolved,
                allowed: self.root.clone(),
            });
        }
        Ok(resolved)
    }

    /// Resolves `reference` (relative to `base`) to an existing path inside `allowed`; `file` and
    /// `field` name where the reference was written.
    pub fn resolve(
        &self,
        base: &Path,
        reference: &str,
        allowed: &Path,
        file: &Path,
        field: &str,
    ) -> Result<PathBuf> {
        let joined = base.join(reference);
        let resolved = joined.canonicalize().map_err(|source| {
            if is_remote(reference) {
                Error::unsupported(format!("remote source `{reference}` (in `{field}`)"), file)
            } else {
                Error::Invalid {
                    file: file.to_path_buf(),
                    field: field.to_string(),
                    message: format!("cannot read `{reference}`: {source}"),
                }
            }
        })?;
        if !resolved.starts_with(allowed) || !resolved.starts_with(&self.root) {
            let allowed = if allowed.starts_with(&self.root) {
                allowed
            } else {
                &self.root
            };
            return Err(Error::OutsideRoot {
                file: file.to_path_buf(),
                field: field.to_string(),
                path: resolved,
                allowed: allowed.to_path_buf(),
            });
        }
        Ok(resolved)
    }

    /// Reads `reference` (relative to `base`), which must lie inside `allowed`.
    pub fn read_in(
        &self,
        base: &Path,
        allowed: &Path,
        reference: &str,
        file: &Path,
        field: &str,
    ) -> Result<(PathBuf, Vec<u8>)> {
        let path = self.resolve(base, reference, allowed, file, field)?;
        let bytes = self.read_counted(&path).map_err(|source| Error::Invalid {
            file: file.to_path_buf(),
            field: field.to_string(),
            message: format!("cannot read `{reference}`: {source}"),
        })?;
        self.check_read()?;
        Ok((path, bytes))
    }
}

/// Decodes file content as UTF-8 text.
pub(crate) fn text(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::Yaml {
        file: path.to_path_buf(),
        source: yaml::YamlError {
            line: 1,
            column: 1,
            message: "the file is not valid UTF-8".to_string(),
        },
    })
}

/// True for URLs and git-style references, which kustomize would fetch.
pub(crate) fn is_remote(reference: &str) -> bool {
    reference.contains("://")
        || reference.starts_with("git@")
        || reference.starts_with("git::")
        || ["github.com/", "gitlab.com/", "bitbucket.org/"]
            .iter()
            .any(|host| reference.starts_with(host))
        || reference.contains("?ref=")
}

/// Parses a stream of Kubernetes objects the way kustomize reads resource files: empty documents
/// are skipped, `*List` kinds with `items` are expanded (their items go last), and every object
/// needs a `kind` and a `metadata.name`.
pub(crate) fn objects_from_text(text: &str, file: &Path) -> Result<Vec<Value>> {
    let documents = yaml::parse_documents(text).map_err(|source| Error::Yaml {
        file: file.to_path_buf(),
        source,
    })?;
    let mut queue: std::collections::VecDeque<(String, Value)> = documents
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("document {}", i + 1), d))
        .collect();
    let mut objects = Vec::new();
    while let Some((position, document)) = queue.pop_front() {
        if document.is_null() || document.as_object().is_some_and(|m| m.is_empty()) {
            continue;
        }
        let Value::Object(map) = &document else {
            return Err(Error::invalid(
                file,
                position,
                "expected a Kubernetes object (a mapping)",
            ));
        };
        let kind = map.get("kind").map(scalar_text).unwrap_or_default();
        if kind.is_empty() {
            return Err(Error::invalid(
                file,
                format!("{position}: kind"),
                "missing kind",
            ));
        }
        if kind.ends_with("List")
            && let Some(items) = map.get("items")
        {
            match items {
                Value::Null => {}
                Value::Array(items) => queue.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| (format!("{position}: items[{i}]"), item.clone())),
                ),
                _ => {
                    return Err(Error::invalid(
                        file,
                        format!("{position}: items"),
                        "expected a list",
                    ));
                }
            }
            continue;
        }
        let name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .map(scalar_text)
            .unwrap_or_default();
        if name.is_empty() && !kind.ends_with("List") {
            return Err(Error::invalid(
                file,
                format!("{position}: metadata.name"),
                "missing metadata.name",
            ));
        }
        objects.push(document);
    }
    Ok(objects)
}

/// The resource list Flux generates for a directory without a kustomization file: every
/// `.yaml`/`.yml` file below it (which must hold Kubernetes objects), and every subdirectory
/// that has its own kustomization file, in lexical walk order.
pub fn flux_resources(dir: &Path) -> Result<Vec<String>> {
    let loader = Loader::new(dir)?;
    let mut resources = Vec::new();
    walk_for_flux(&loader, loader.root(), &mut resources)?;
    Ok(resources)
}

fn walk_for_flux(loader: &Loader, dir: &Path, resources: &mut Vec<String>) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in entries {
        let metadata = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let relative = || {
            let rest = path.strip_prefix(loader.root()).unwrap_or(&path);
            let parts: Vec<String> = rest
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            format!("./{}", parts.join("/"))
        };
        if metadata.is_dir() {
            if loader.kustomization_file(&path)?.is_some() {
                resources.push(relative());
            } else {
                walk_for_flux(loader, &path, resources)?;
            }
            continue;
        }
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !is_yaml {
            continue;
        }
        let reference = relative();
        let resolved = loader.resolve(
            loader.root(),
            &reference,
            loader.root(),
            &path,
            "(generated resources)",
        )?;
        let bytes = std::fs::read(&resolved).map_err(io(&resolved))?;
        objects_from_text(&text(&resolved, bytes)?, &resolved)?;
        resources.push(reference);
    }
    Ok(())
}
