//! Helm repository index files: parsing (JSON or YAML), Flux's normalisation (invalid entries
//! dropped, versions sorted newest first) and chart version selection by SemVer range.

use nodejs_semver::{Range, Version};
use serde_json::{Map, Value};

/// Reading or querying an index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the repository index is empty")]
    Empty,
    #[error("the repository index is neither valid JSON nor YAML: {0}")]
    Parse(String),
    #[error("the repository index has no apiVersion; check spec.url points at a Helm repository")]
    NoApiVersion,
    #[error(
        "invalid chart version range '{range}': {message}; use a range such as '>=1.0.0 <2.0.0' or '6.x'"
    )]
    InvalidRange { range: String, message: String },
    #[error("no chart name found '{0}' in the repository index")]
    NoChart(String),
    #[error("no '{chart}' chart with version matching '{range}' found")]
    NoMatch { chart: String, range: String },
}

/// A chart version from an index: its version, download URLs and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartVersion {
    pub name: String,
    pub version: String,
    pub urls: Vec<String>,
    pub digest: Option<String>,
}

/// A parsed, normalised repository index.
#[derive(Debug, Clone)]
pub struct RepositoryIndex {
    document: Map<String, Value>,
}

impl RepositoryIndex {
    /// Parses index bytes (JSON when valid JSON, YAML otherwise) and normalises them as Flux does.
    pub fn parse(bytes: &[u8]) -> Result<Self, IndexError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(IndexError::Empty);
        }
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(value) => value,
            Err(_) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| IndexError::Parse(format!("not UTF-8: {e}")))?;
                serde_saphyr::from_str(text).map_err(|e| IndexError::Parse(e.to_string()))?
            }
        };
        let Value::Object(mut document) = value else {
            return Err(IndexError::Parse("the document is not a mapping".into()));
        };
        if document
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(IndexError::NoApiVersion);
        }
        if let Some(Value::Object(entries)) = document.get_mut("entries") {
            let mut sorted: Vec<(String, Value)> = std::mem::take(entries).into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, versions) in &mut sorted {
                normalise_versions(versions);
            }
            *entries = sorted.into_iter().collect();
        }
        Ok(Self { document })
    }

    /// The normalised index as JSON (valid YAML too), entries sorted by name; Flux's artifact.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.document).unwrap_or_default()
    }

    /// Number of chart versions across all entries.
    pub fn version_count(&self) -> usize {
        self.entries()
            .map(|entries| {
                entries
                    .values()
                    .map(|v| v.as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0)
    }

    fn entries(&self) -> Option<&Map<String, Value>> {
        self.document.get("entries").and_then(Value::as_object)
    }

    /// The newest version of `chart` matching `range` (`*` or empty: the newest stable version).
    /// An exact version string matches itself even when it is not SemVer, as in Helm.
    pub fn select(&self, chart: &str, range: &str) -> Result<ChartVersion, IndexError> {
        let versions = self
            .entries()
            .and_then(|entries| entries.get(chart))
            .and_then(Value::as_array)
            .filter(|versions| !versions.is_empty())
            .ok_or_else(|| IndexError::NoChart(chart.to_owned()))?;
        let range = range.trim();
        let range = if range.is_empty() { "*" } else { range };
        if let Some(exact) = versions
            .iter()
            .find(|v| v.get("version").and_then(Value::as_str) == Some(range))
        {
            return Ok(chart_version(chart, exact));
        }
        let parsed = parse_range(range)?;
        versions
            .iter()
            .filter_map(|entry| {
                let version = parse_version(entry.get("version")?.as_str()?)?;
                parsed.satisfies(&version).then_some((version, entry))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, entry)| chart_version(chart, entry))
            .ok_or_else(|| IndexError::NoMatch {
                chart: chart.to_owned(),
                range: range.to_owned(),
            })
    }
}

fn chart_version(chart: &str, entry: &Value) -> ChartVersion {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    ChartVersion {
        name: text("name").unwrap_or_else(|| chart.to_owned()),
        version: text("version").unwrap_or_default(),
        urls: entry
            .get("urls")
            .and_then(Value::as_array)
            .map(|urls| {
                urls.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        digest: text("digest").filter(|d| !d.is_empty()),
    }
}

/// Parses a Helm (Masterminds) constraint with node-semver: commas separate AND terms there.
pub fn parse_range(range: &str) -> Result<Range, IndexError> {
    let normalised = range.replace(',', " ");
    Range::parse(normalised.trim()).map_err(|e| IndexError::InvalidRange {
        range: range.to_owned(),
        message: e.to_string(),
    })
}

/// Parses a chart version, accepting a leading `v`.
pub fn parse_version(version: &str) -> Option<Version> {
    Version::parse(version.strip_prefix('v').unwrap_or(version)).ok()
}

/// Drops entries without a name or version and sorts the rest newest first (SemVer order;
/// versions that are not SemVer go last, in their original order).
fn normalise_versions(versions: &mut Value) {
    let Value::Array(list) = versions else {
        *versions = Value::Array(Vec::new());
        return;
    };
    list.retain(|entry| {
        let present = |key: &str| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        present("name") && present("version")
    });
    for entry in list.iter_mut() {
        if let Value::Object(fields) = entry
            && !fields.contains_key("apiVersion")
        {
            fields.insert("apiVersion".into(), Value::String("v1".into()));
        }
    }
    list.sort_by(|a, b| {
        let version = |v: &Value| {
            v.get("version")
                .and_then(Value::as_str)
                .and_then(parse_version)
        };
        match (version(a), version(b)) {
            (Some(a), Some(b)) => b.cmp(&a),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"
apiVersion: v1
entries:
  podinfo:
    - name: podinfo
      version: 6.0.0
      urls: [podinfo-6.0.0.tgz]
    - name: podinfo
      version: 6.1.0
      urls: [podinfo-6.1.0.tgz]
      digest: abc
    - name: podinfo
      version: 7.0.0-rc.1
      urls: [podinfo-7.0.0-rc.1.tgz]
    - name: podinfo
      urls: [broken.tgz]
  alpha:
    - name: alpha
      version: 1.0.0
      urls: [https://charts.example.com/alpha-1.0.0.tgz]
"#;

    #[test]
    fn normalises_like_flux() {
        let index = RepositoryIndex::parse(INDEX.as_bytes()).unwrap();
        assert_eq!(index.version_count(), 4);
        let json: Value = serde_json::from_slice(&index.to_json()).unwrap();
        let versions: Vec<_> = json["entries"]["podinfo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["7.0.0-rc.1", "6.1.0", "6.0.0"]);
        assert_eq!(json["entries"]["alpha"][0]["apiVersion"], "v1");
        let names: Vec<_> = json["entries"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["alpha", "podinfo"]);
    }

    #[test]
    fn selects_the_newest_matching_stable_version() {
        let index = RepositoryIndex::parse(INDEX.as_bytes()).unwrap();
        assert_eq!(index.select("podinfo", "*").unwrap().version, "6.1.0");
        assert_eq!(index.select("podinfo", "").unwrap().version, "6.1.0");
        assert_eq!(index.select("podinfo", "6.0.x").unwrap().version, "6.0.0");
        assert_eq!(
            index.select("podinfo", ">=6.0.0, <6.1.0").unwrap().version,
            "6.0.0"
        );
        assert_eq!(
            index.select("podinfo", ">=7.0.0-0").unwrap().version,
            "7.0.0-rc.1"
        );
        assert_eq!(
            index.select("podinfo", "7.0.0-rc.1").unwrap().version,
            "7.0.0-rc.1"
        );
        let selected = index.select("podinfo", "^6").unwrap();
        assert_eq!(selected.urls, ["podinfo-6.1.0.tgz"]);
        assert_eq!(selected.digest.as_deref(), Some("abc"));
        assert!(matches!(
            index.select("podinfo", ">=8"),
            Err(IndexError::NoMatch { .. })
        ));
        assert!(matches!(
            index.select("missing", "*"),
            Err(IndexError::NoChart(_))
        ));
        assert!(matches!(
            index.select("podinfo", "not a range!"),
            Err(IndexError::InvalidRange { .. })
        ));
    }

    #[test]
    fn refuses_empty_and_unversioned_indexes() {
        assert!(matches!(
            RepositoryIndex::parse(b"  \n"),
            Err(IndexError::Empty)
        ));
        assert!(matches!(
            RepositoryIndex::parse(b"entries: {}\n"),
            Err(IndexError::NoApiVersion)
        ));
        assert!(RepositoryIndex::parse(br#"{"apiVersion":"v1","entries":{}}"#).is_ok());
    }
}
