//! Chart dependencies as Flux's dependency build sees them: the ones `Chart.lock` (else
//! `Chart.yaml`) declares that `charts/` lacks, each classified by where it comes from: a chart
//! directory in the same source (`file://`), an HTTP(S) chart repository or an OCI registry.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::helm::chart::{CHART_FILE, Chart, parse_yaml_mapping};
use crate::helm::index::{parse_range, parse_version};

/// The lock file whose dependencies take precedence over `Chart.yaml`'s.
const LOCK_FILE: &str = "Chart.lock";
/// Most dependencies one chart may declare.
pub const MAX_DEPENDENCIES: usize = 100;

/// A dependency cannot be resolved from its declaration.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    #[error("invalid {file}: {message}")]
    Metadata { file: &'static str, message: String },
    #[error("the chart declares more than {MAX_DEPENDENCIES} dependencies")]
    TooMany,
    #[error(
        "dependency '{name}' has no repository and is not in charts/; vendor it or set its repository"
    )]
    NoRepository { name: String },
    #[error(
        "dependency '{name}': aliased repository '{repository}' is not supported; use the repository URL"
    )]
    AliasedRepository { name: String, repository: String },
    #[error(
        "dependency '{name}': repository '{repository}' is not a file://, http(s):// or oci:// URL"
    )]
    UnsupportedRepository { name: String, repository: String },
    #[error("dependency '{name}': the path '{repository}' leaves the source; keep it inside")]
    OutsideSource { name: String, repository: String },
    #[error("invalid version/constraint format '{constraint}': {message}")]
    InvalidConstraint { constraint: String, message: String },
    #[error("can't get a valid version for constraint '{constraint}' (the chart is '{version}')")]
    NoValidVersion { constraint: String, version: String },
}

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub alias: Option<String>,
    /// A version or constraint; empty means any.
    pub version: String,
    pub repository: String,
}

/// Where a missing dependency comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A chart directory, relative to the source root.
    Local(PathBuf),
    /// An HTTP(S) chart repository, its URL normalised with a trailing `/`.
    Http(String),
    /// An OCI registry path, `oci://…` without a trailing `/`.
    Oci(String),
}

/// The dependencies `Chart.lock` declares, else those of `Chart.yaml`.
pub fn declared(chart: &Chart) -> Result<Vec<Dependency>, DependencyError> {
    let (file, bytes) = match chart.files.get(LOCK_FILE) {
        Some(lock) => (LOCK_FILE, lock),
        None => match chart.files.get(CHART_FILE) {
            Some(metadata) => (CHART_FILE, metadata),
            None => return Ok(Vec::new()),
        },
    };
    let invalid = |message: String| DependencyError::Metadata { file, message };
    let document = parse_yaml_mapping(bytes)
        .map_err(|e| invalid(e.to_string()))?
        .unwrap_or_default();
    let list = match document.get("dependencies") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("'dependencies' is not a list".into())),
    };
    if list.len() > MAX_DEPENDENCIES {
        return Err(DependencyError::TooMany);
    }
    list.iter()
        .map(|entry| {
            let text = |key: &str| match entry.get(key) {
                Some(Value::String(s)) => s.trim().to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let name = text("name");
            if name.is_empty() || name.contains('/') || name.contains("..") {
                return Err(invalid(format!("dependency name '{name}' is invalid")));
            }
            let alias = Some(text("alias")).filter(|a| !a.is_empty());
            Ok(Dependency {
                name,
                alias,
                version: text("version"),
                repository: text("repository"),
            })
        })
        .collect()
}

/// The declared dependencies that `charts/` holds under neither their alias nor their name.
pub fn missing(chart: &Chart, dependencies: Vec<Dependency>) -> Vec<Dependency> {
    dependencies
        .into_iter()
        .filter(|dependency| {
            let alias = dependency.alias.as_deref();
            !(vendors(chart, &dependency.name) || alias.is_some_and(|a| vendors(chart, a)))
        })
        .collect()
}

/// Whether `charts/` holds chart `name`: `charts/<name>/…` or `charts/<name>-<version>.tgz`.
fn vendors(chart: &Chart, name: &str) -> bool {
    let directory = format!("charts/{name}/");
    let archive = format!("charts/{name}-");
    chart.files.keys().any(|path| {
        path.starts_with(&directory)
            || path
                .strip_prefix(&archive)
                .and_then(|rest| rest.strip_suffix(".tgz"))
                .is_some_and(|version| !version.contains('/') && parse_version(version).is_some())
    })
}

/// Where `dependency` of the chart at `chart_dir` (relative to the source root) comes from.
pub fn origin(dependency: &Dependency, chart_dir: &Path) -> Result<Origin, DependencyError> {
    let repository = dependency.repository.as_str();
    let name = || dependency.name.clone();
    if repository.is_empty() {
        return Err(DependencyError::NoRepository { name: name() });
    }
    if let Some(path) = repository.strip_prefix("file://") {
        return local_path(chart_dir, path)
            .map(Origin::Local)
            .ok_or_else(|| DependencyError::OutsideSource {
                name: name(),
                repository: repository.to_owned(),
            });
    }
    if repository.starts_with("http://") || repository.starts_with("https://") {
        return Ok(Origin::Http(normalize_url(repository)));
    }
    if repository.starts_with("oci://") {
        return Ok(Origin::Oci(normalize_url(repository)));
    }
    if repository.starts_with('@') || repository.starts_with("alias:") {
        return Err(DependencyError::AliasedRepository {
            name: name(),
            repository: repository.to_owned(),
        });
    }
    Err(DependencyError::UnsupportedRepository {
        name: name(),
        repository: repository.to_owned(),
    })
}

/// A repository URL as Flux compares them: OCI without, HTTP(S) with one trailing `/`.
pub fn normalize_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    if trimmed.starts_with("oci://") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/")
    }
}

/// `chart_dir/path` resolved lexically; `None` when it leaves the source root.
fn local_path(chart_dir: &Path, path: &str) -> Option<PathBuf> {
    let joined = chart_dir.join(path.trim_start_matches('/'));
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in joined.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Checks a chart version against a dependency's version constraint (empty: any).
pub fn check_version(constraint: &str, version: &str) -> Result<(), DependencyError> {
    let wanted = if constraint.trim().is_empty() {
        "*"
    } else {
        constraint
    };
    let range = parse_range(wanted).map_err(|e| DependencyError::InvalidConstraint {
        constraint: constraint.to_owned(),
        message: e.to_string(),
    })?;
    let no_match = || DependencyError::NoValidVersion {
        constraint: constraint.to_owned(),
        version: version.to_owned(),
    };
    let parsed = parse_version(version).ok_or_else(no_match)?;
    if range.satisfies(&parsed) {
        Ok(())
    } else {
        Err(no_match())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::helm::chart::ChartLimits;

    fn chart(files: &[(&str, &str)]) -> Chart {
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect();
        let bytes = Chart {
            name: "app".into(),
            version: "1.0.0".into(),
            files,
        }
        .package()
        .unwrap();
        let limits = ChartLimits {
            max_size: 1 << 20,
            max_file_size: 1 << 16,
        };
        Chart::from_archive(&bytes, limits).unwrap()
    }

    const METADATA: &str = "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: redis\n  version: 1.x\n  repository: https://charts.example.com/stable\n- name: common\n  alias: base\n  repository: file://../common\n- name: db\n  version: \"2.0.0\"\n  repository: oci://registry.example.com/charts/\n- name: web\n  repository: \"@bitnami\"\n";

    #[test]
    fn missing_dependencies_are_those_charts_lacks_by_name_or_alias() {
        let app = chart(&[
            (CHART_FILE, METADATA),
            ("charts/base/Chart.yaml", "name: common\nversion: 1.0.0\n"),
            ("charts/db-2.0.0.tgz", "archive"),
            ("charts/redis-cache-1.0.0.tgz", "another chart"),
        ]);
        let names: Vec<String> = missing(&app, declared(&app).unwrap())
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, ["redis", "web"]);
    }

    #[test]
    fn the_lock_file_takes_precedence() {
        let lock = "dependencies:\n- name: redis\n  version: 1.2.3\n  repository: https://charts.example.com/stable\n";
        let app = chart(&[(CHART_FILE, METADATA), (LOCK_FILE, lock)]);
        let declared = declared(&app).unwrap();
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].version, "1.2.3");
    }

    #[test]
    fn origins_are_classified_and_stay_inside_the_source() {
        let app = chart(&[(CHART_FILE, METADATA)]);
        let declared = declared(&app).unwrap();
        let dir = Path::new("charts/app");
        assert_eq!(
            origin(&declared[0], dir).unwrap(),
            Origin::Http("https://charts.example.com/stable/".into())
        );
        assert_eq!(
            origin(&declared[1], dir).unwrap(),
            Origin::Local(PathBuf::from("charts/common"))
        );
        assert_eq!(
            origin(&declared[2], dir).unwrap(),
            Origin::Oci("oci://registry.example.com/charts".into())
        );
        assert!(matches!(
            origin(&declared[3], dir),
            Err(DependencyError::AliasedRepository { .. })
        ));
        let escape = Dependency {
            repository: "file://../../../etc".into(),
            ..declared[1].clone()
        };
        assert!(matches!(
            origin(&escape, dir),
            Err(DependencyError::OutsideSource { .. })
        ));
        let none = Dependency {
            repository: String::new(),
            ..declared[1].clone()
        };
        assert!(matches!(
            origin(&none, dir),
            Err(DependencyError::NoRepository { .. })
        ));
    }

    #[test]
    fn versions_are_checked_against_constraints() {
        assert!(check_version("", "0.1.0").is_ok());
        assert!(check_version("1.x", "1.4.0").is_ok());
        assert!(check_version(">=1.0.0, <2.0.0", "1.9.9").is_ok());
        assert!(matches!(
            check_version("2.x", "1.4.0"),
            Err(DependencyError::NoValidVersion { .. })
        ));
        assert!(matches!(
            check_version("not a version", "1.4.0"),
            Err(DependencyError::InvalidConstraint { .. })
        ));
    }
}
