//! Helm charts in memory: loading a chart archive or directory (with size caps), merging values
//! files, and packaging a chart as Helm does (`<name>/...` entries in a gzipped tar).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::{Map, Value};

use crate::ignore::{IgnoreError, IgnoreRules};

/// The chart metadata file.
pub const CHART_FILE: &str = "Chart.yaml";
/// The chart's default values file.
pub const VALUES_FILE: &str = "values.yaml";
/// Most files one chart may hold.
const MAX_FILES: usize = 10_000;
/// Patterns `helm package` reads from the chart root, relative to it.
const HELM_IGNORE_FILE: &str = ".helmignore";
/// What Helm ignores in every chart: hidden files under `templates/`.
const HELM_DEFAULT_IGNORES: &str = "templates/.?*";

/// Loading, merging or packaging a chart failed.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("reading the chart archive failed: {0}")]
    Archive(String),
    #[error("reading {path} failed: {message}")]
    Io { path: String, message: String },
    #[error("invalid {HELM_IGNORE_FILE}: {0}")]
    HelmIgnore(#[from] IgnoreError),
    #[error("chart file '{path}' exceeds {limit} bytes; raise --helm-chart-file-max-size")]
    FileTooLarge { path: String, limit: u64 },
    #[error("the chart exceeds {limit} bytes; raise --helm-chart-max-size")]
    TooLarge { limit: u64 },
    #[error("the chart has more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("the chart has no Chart.yaml")]
    NoMetadata,
    #[error("invalid Chart.yaml: {0}")]
    Metadata(String),
    #[error("no values file found at path '{0}'")]
    MissingValuesFile(String),
    #[error("failed to parse values file '{path}': {message}")]
    Values { path: String, message: String },
    #[error("invalid chart version '{version}' with build metadata '{metadata}': {message}")]
    Version {
        version: String,
        metadata: String,
        message: String,
    },
}

/// Caps on a chart's total and per-file size.
#[derive(Debug, Clone, Copy)]
pub struct ChartLimits {
    pub max_size: u64,
    pub max_file_size: u64,
}

/// A chart's files by path relative to the chart root, and its name and version.
#[derive(Debug, Clone)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Chart {
    fn from_files(files: BTreeMap<String, Vec<u8>>) -> Result<Self, ChartError> {
        let metadata = files.get(CHART_FILE).ok_or(ChartError::NoMetadata)?;
        let metadata = parse_yaml_mapping(metadata)
            .map_err(|e| ChartError::Metadata(e.to_string()))?
            .ok_or_else(|| ChartError::Metadata("the document is empty".into()))?;
        let field = |key: &str| {
            metadata
                .get(key)
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ChartError::Metadata(format!("'{key}' is required")))
        };
        let name = field("name")?;
        let version = field("version")?;
        if name.contains('/') || name.contains("..") {
            return Err(ChartError::Metadata(format!("invalid chart name '{name}'")));
        }
        Ok(Self {
            name,
            version,
            files,
        })
    }

    /// Loads a chart archive (`.tgz`): entries under one top directory, links skipped.
    pub fn from_archive(bytes: &[u8], limits: ChartLimits) -> Result<Self, ChartError> {
        if bytes.len() as u64 > limits.max_size {
            return Err(ChartError::TooLarge {
                limit: limits.max_size,
            });
        }
        let mut archive = tar::Archive::new(GzDecoder::new(bytes));
        let entries = archive
            .entries()
            .map_err(|e| ChartError::Archive(e.to_string()))?;
        let mut files = BTreeMap::new();
        let mut total = 0_u64;
        for entry in entries {
            let mut entry = entry.map_err(|e| ChartError::Archive(e.to_string()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| ChartError::Archive(e.to_string()))?
                .into_owned();
            let Some(relative) = strip_top_dir(&path) else {
                continue;
            };
            let size = entry.header().size().unwrap_or(u64::MAX);
            check_file(&relative, size, &mut total, files.len(), limits)?;
            let mut data = Vec::new();
            entry
                .by_ref()
                .take(limits.max_file_size + 1)
                .read_to_end(&mut data)
                .map_err(|e| ChartError::Archive(e.to_string()))?;
            check_file(&relative, data.len() as u64, &mut 0, 0, limits)?;
            files.insert(relative, data);
        }
        Self::from_files(files)
    }

    /// Loads a chart directory; symbolic links and other non-regular files are skipped.
    pub fn from_dir(dir: &Path, limits: ChartLimits) -> Result<Self, ChartError> {
        let ignore = helm_ignore_rules(dir)?;
        let mut files = BTreeMap::new();
        let mut total = 0_u64;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            let io = |e: std::io::Error| ChartError::Io {
                path: current.display().to_string(),
                message: e.to_string(),
            };
            for entry in std::fs::read_dir(&current).map_err(io)? {
                let entry = entry.map_err(io)?;
                let kind = entry.file_type().map_err(io)?;
                let path = entry.path();
                let relative = path
                    .strip_prefix(dir)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                if ignore.is_excluded(&relative, kind.is_dir()) {
                    continue;
                }
                if kind.is_dir() {
                    pending.push(path);
                    continue;
                }
                if !kind.is_file() {
                    continue;
                }
                let size = entry.metadata().map_err(io)?.len();
                check_file(&relative, size, &mut total, files.len(), limits)?;
                files.insert(relative, std::fs::read(&path).map_err(io)?);
            }
        }
        Self::from_files(files)
    }

    /// Adds a file, e.g. a dependency archive under `charts/`, within the size caps.
    pub fn add_file(
        &mut self,
        path: String,
        data: Vec<u8>,
        limits: ChartLimits,
    ) -> Result<(), ChartError> {
        let mut total: u64 = self.files.values().map(|d| d.len() as u64).sum();
        check_file(
            &path,
            data.len() as u64,
            &mut total,
            self.files.len(),
            limits,
        )?;
        self.files.insert(path, data);
        Ok(())
    }

    /// Replaces `values.yaml` with `values_files` (paths relative to `root`) deep-merged in
    /// order; a missing file fails unless `ignore_missing`. Returns the files merged.
    pub fn merge_values_files(
        &mut self,
        values_files: &[String],
        ignore_missing: bool,
        read: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Vec<String>, ChartError> {
        let mut merged = Map::new();
        let mut used = Vec::new();
        for path in values_files {
            let Some(bytes) = read(path) else {
                if ignore_missing {
                    continue;
                }
                return Err(ChartError::MissingValuesFile(path.clone()));
            };
            let values = parse_yaml_mapping(&bytes).map_err(|e| ChartError::Values {
                path: path.clone(),
                message: e.to_string(),
            })?;
            merge_maps(&mut merged, values.unwrap_or_default());
            used.push(path.clone());
        }
        let yaml =
            serde_saphyr::to_string(&Value::Object(merged)).map_err(|e| ChartError::Values {
                path: VALUES_FILE.into(),
                message: e.to_string(),
            })?;
        self.files.insert(VALUES_FILE.into(), yaml.into_bytes());
        Ok(used)
    }

    /// Sets the chart version, in `Chart.yaml` too.
    pub fn set_version(&mut self, version: &str) -> Result<(), ChartError> {
        let metadata = self.files.get(CHART_FILE).ok_or(ChartError::NoMetadata)?;
        let mut metadata = parse_yaml_mapping(metadata)
            .map_err(|e| ChartError::Metadata(e.to_string()))?
            .unwrap_or_default();
        metadata.insert("version".into(), Value::String(version.to_owned()));
        let yaml = serde_saphyr::to_string(&Value::Object(metadata))
            .map_err(|e| ChartError::Metadata(e.to_string()))?;
        self.files.insert(CHART_FILE.into(), yaml.into_bytes());
        self.version = version.to_owned();
        Ok(())
    }

    /// Packages the chart as Helm does: sorted `<name>/<path>` entries, gzip compressed.
    pub fn package(&self) -> Result<Vec<u8>, ChartError> {
        let failed = |e: std::io::Error| ChartError::Archive(e.to_string());
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let mut ordered: Vec<(&String, &Vec<u8>)> = self.files.iter().collect();
        // Chart.yaml first, as `helm package` writes it.
        ordered.sort_by_key(|(path, _)| (path.as_str() != CHART_FILE, path.as_str()));
        for (path, data) in ordered {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            builder
                .append_data(
                    &mut header,
                    format!("{}/{path}", self.name),
                    data.as_slice(),
                )
                .map_err(failed)?;
        }
        let encoder = builder.into_inner().map_err(failed)?;
        encoder.finish().map_err(failed)
    }
}

/// Appends build metadata to a SemVer version as Flux does (replacing any existing metadata).
pub fn with_build_metadata(version: &str, metadata: &str) -> Result<String, ChartError> {
    let invalid = |message: &str| ChartError::Version {
        version: version.to_owned(),
        metadata: metadata.to_owned(),
        message: message.to_owned(),
    };
    if crate::helm::index::parse_version(version).is_none() {
        return Err(invalid("the chart version is not SemVer"));
    }
    let valid = metadata.split('.').all(|part| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid {
        return Err(invalid("build metadata must be dot-separated [0-9A-Za-z-]"));
    }
    let base = version.split('+').next().unwrap_or(version);
    Ok(format!("{base}+{metadata}"))
}

fn check_file(
    path: &str,
    size: u64,
    total: &mut u64,
    count: usize,
    limits: ChartLimits,
) -> Result<(), ChartError> {
    if size > limits.max_file_size {
        return Err(ChartError::FileTooLarge {
            path: path.to_owned(),
            limit: limits.max_file_size,
        });
    }
    *total = total.saturating_add(size);
    if *total > limits.max_size {
        return Err(ChartError::TooLarge {
            limit: limits.max_size,
        });
    }
    if count >= MAX_FILES {
        return Err(ChartError::TooManyFiles);
    }
    Ok(())
}

/// The path below an archive's top directory, when it is a safe relative path.
fn strip_top_dir(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (parts.len() > 1).then(|| parts[1..].join("/"))
}

/// Helm's defaults plus the chart's `.helmignore`, if it has one.
fn helm_ignore_rules(dir: &Path) -> Result<IgnoreRules, ChartError> {
    let mut rules = IgnoreRules::default();
    rules.add_lines(HELM_DEFAULT_IGNORES, "")?;
    let file = dir.join(HELM_IGNORE_FILE);
    if std::fs::symlink_metadata(&file).is_ok_and(|meta| meta.is_file()) {
        let text = std::fs::read_to_string(&file).map_err(|source| IgnoreError::Io {
            path: HELM_IGNORE_FILE.into(),
            source,
        })?;
        rules.add_lines(&text, "")?;
    }
    rules.compile()?;
    Ok(rules)
}

/// A YAML document that is not a mapping of values.
#[derive(Debug, thiserror::Error)]
pub enum YamlMappingError {
    #[error("not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("{0}")]
    Parse(#[from] serde_saphyr::Error),
    #[error("the document is not a mapping")]
    NotMapping,
}

/// Parses a YAML (or JSON) mapping; an empty document is `None`.
pub fn parse_yaml_mapping(bytes: &[u8]) -> Result<Option<Map<String, Value>>, YamlMappingError> {
    let text = std::str::from_utf8(bytes)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_saphyr::from_str(text)? {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        _ => Err(YamlMappingError::NotMapping),
    }
}

/// Helm's value merge: nested mappings merge key by key; anything else is replaced.
fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_maps(existing, incoming);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChartLimits = ChartLimits {
        max_size: 1 << 20,
        max_file_size: 1 << 16,
    };

    fn chart() -> Chart {
        let files = BTreeMap::from([
            (
                CHART_FILE.to_owned(),
                b"apiVersion: v2\nname: app\nversion: 1.2.3\n".to_vec(),
            ),
            (VALUES_FILE.to_owned(), b"replicas: 1\n".to_vec()),
            (
                "templates/cm.yaml".to_owned(),
                b"kind: ConfigMap\n".to_vec(),
            ),
        ]);
        Chart::from_files(files).unwrap()
    }

    fn chart_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, contents).unwrap();
        }
        dir
    }

    #[test]
    fn helmignore_and_helm_defaults_leave_files_out_of_the_package() {
        let dir = chart_dir(&[
            (CHART_FILE, "apiVersion: v2\nname: app\nversion: 1.0.0\n"),
            (HELM_IGNORE_FILE, "# editor files\n*.swp\nci/\n!keep.swp\n"),
            ("templates/cm.yaml", "kind: ConfigMap\n"),
            ("templates/.notes", "hidden\n"),
            ("templates/cm.yaml.swp", "x"),
            ("keep.swp", "kept"),
            ("ci/values.yaml", "a: 1\n"),
        ]);
        let chart = Chart::from_dir(dir.path(), LIMITS).unwrap();
        let paths: Vec<&str> = chart.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                HELM_IGNORE_FILE,
                CHART_FILE,
                "keep.swp",
                "templates/cm.yaml"
            ]
        );
    }

    #[test]
    fn package_round_trips_under_the_chart_name() {
        let chart = chart();
        let packaged = chart.package().unwrap();
        assert_eq!(packaged, chart.package().unwrap(), "deterministic");
        let mut archive = tar::Archive::new(GzDecoder::new(packaged.as_slice()));
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["app/Chart.yaml", "app/templates/cm.yaml", "app/values.yaml"]
        );
        let loaded = Chart::from_archive(&packaged, LIMITS).unwrap();
        assert_eq!(
            (loaded.name.as_str(), loaded.version.as_str()),
            ("app", "1.2.3")
        );
        assert_eq!(loaded.files, chart.files);
    }

    #[test]
    fn values_files_merge_in_order_and_replace_values_yaml() {
        let mut chart = chart();
        let sources = BTreeMap::from([
            ("a.yaml", "image:\n  tag: a\n  repo: r\nlist: [1, 2]\n"),
            ("b.yaml", "image:\n  tag: b\nlist: [3]\n"),
        ]);
        let read = |p: &str| sources.get(p).map(|s| s.as_bytes().to_vec());
        let files = [
            "a.yaml".to_owned(),
            "missing.yaml".to_owned(),
            "b.yaml".to_owned(),
        ];
        assert!(matches!(
            chart.clone().merge_values_files(&files, false, read),
            Err(ChartError::MissingValuesFile(p)) if p == "missing.yaml"
        ));
        let used = chart.merge_values_files(&files, true, read).unwrap();
        assert_eq!(used, ["a.yaml", "b.yaml"]);
        let values = parse_yaml_mapping(&chart.files[VALUES_FILE])
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(values),
            serde_json::json!({"image": {"tag": "b", "repo": "r"}, "list": [3]})
        );
    }

    #[test]
    fn build_metadata_and_versions() {
        assert_eq!(with_build_metadata("1.2.3", "3").unwrap(), "1.2.3+3");
        assert_eq!(
            with_build_metadata("1.2.3+old", "abcdef012345.2").unwrap(),
            "1.2.3+abcdef012345.2"
        );
        assert!(with_build_metadata("latest", "1").is_err());
        let mut chart = chart();
        chart.set_version("1.2.3+7").unwrap();
        let packaged = chart.package().unwrap();
        assert_eq!(
            Chart::from_archive(&packaged, LIMITS).unwrap().version,
            "1.2.3+7"
        );
    }

    #[test]
    fn caps_and_unsafe_entries() {
        let big = ChartLimits {
            max_size: 1 << 20,
            max_file_size: 4,
        };
        assert!(matches!(
            Chart::from_archive(&chart().package().unwrap(), big),
            Err(ChartError::FileTooLarge { .. })
        ));
        assert_eq!(strip_top_dir(Path::new("app/../x")), None);
        assert_eq!(strip_top_dir(Path::new("app")), None);
        assert_eq!(
            strip_top_dir(Path::new("app/templates/x.yaml")).as_deref(),
            Some("templates/x.yaml")
        );
    }
}
