//! Helm charts in OCI registries, as Helm stores them: one manifest per chart version, tagged
//! with the version (`+` written as `_`), whose chart layer is the chart archive. Versions are
//! chosen from the tag list; manifests and layers are pulled through `sluice-registry` within the
//! chart size cap and a timeout per operation.

use std::time::Duration;

use sluice_registry::{RegistryAccess, RegistryError};

use crate::helm::index::{parse_range, parse_version};

/// Media type of the chart layer Helm pushes.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Media type of chart layers pushed by Helm before 3.8.
const LEGACY_CHART_LAYER_MEDIA_TYPE: &str = "application/tar+gzip";
/// Media type of the config blob of a Helm chart manifest.
pub const CHART_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";

/// Resolving or pulling an OCI chart failed.
#[derive(Debug, thiserror::Error)]
pub enum OciChartError {
    #[error("invalid OCI repository URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "invalid chart version range '{range}': {message}; use a range such as '>=1.0.0 <2.0.0' or '6.x'"
    )]
    InvalidRange { range: String, message: String },
    #[error("no tags found for chart '{0}' in the registry; push the chart or fix spec.chart")]
    NoTags(String),
    #[error(
        "could not locate a version of chart '{chart}' matching '{range}' in the registry tags"
    )]
    NoMatch { chart: String, range: String },
    #[error("{what} failed: {source}")]
    Registry {
        what: String,
        #[source]
        source: RegistryError,
    },
    #[error(
        "{what} timed out after {timeout:?}; raise the HelmRepository's spec.timeout or check the registry"
    )]
    Timeout { what: String, timeout: Duration },
    #[error("{0}")]
    Manifest(String),
    #[error(
        "the chart layer is {size} bytes, over the limit of {limit}; raise --helm-chart-max-size"
    )]
    TooLarge { size: u64, limit: u64 },
}

impl OciChartError {
    /// Whether the registry refused the credentials (Flux's `AuthenticationFailed`).
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self, Self::Registry { source, .. } if source.is_authentication_failure())
    }
}

/// A chart repository in a registry: `oci://host[:port][/path]`, charts at `<path>/<chart>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciChartRepository {
    /// `host[:port]/path` without a trailing slash.
    base: String,
}

impl OciChartRepository {
    /// Parses a HelmRepository or dependency URL; tags, digests and credentials are refused.
    pub fn parse(url: &str) -> Result<Self, OciChartError> {
        let invalid = |reason: &str| OciChartError::InvalidUrl {
            url: sluice_git::display_url(url),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| invalid("it must start with oci://"))?;
        let base = rest.trim_end_matches('/');
        let host = base.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("it has no registry host"));
        }
        if host.contains('@') {
            return Err(invalid(
                "credentials belong in spec.secretRef, not in the URL",
            ));
        }
        if base.contains('@') || base.split('/').skip(1).any(|part| part.contains(':')) {
            return Err(invalid("it must not name a tag or digest"));
        }
        Ok(Self {
            base: base.to_owned(),
        })
    }

    /// The registry host (`host[:port]`), for docker-config credentials.
    pub fn host(&self) -> &str {
        self.base.split('/').next().unwrap_or_default()
    }

    /// The image holding chart `chart`: `host[:port]/path/chart`.
    pub fn image(&self, chart: &str) -> String {
        format!("{}/{chart}", self.base)
    }
}

/// The chart version a tag names: Helm writes `+` as `_` because tags cannot hold `+`.
pub fn tag_to_version(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The tag a chart version is stored under.
pub fn version_to_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Whether `version` is one exact SemVer version (Flux then pulls it without listing tags).
pub fn is_exact_version(version: &str) -> bool {
    parse_version(version.trim()).is_some()
}

/// The version to pull from `tags` for `range`, as Flux picks it: a tag equal to the range
/// first, else the highest SemVer version matching it (`*` or empty: the highest stable one).
pub fn select_version(chart: &str, tags: &[String], range: &str) -> Result<String, OciChartError> {
    if tags.is_empty() {
        return Err(OciChartError::NoTags(chart.to_owned()));
    }
    let range = range.trim();
    let versions: Vec<String> = tags.iter().map(|tag| tag_to_version(tag)).collect();
    if !range.is_empty()
        && let Some(exact) = versions.iter().find(|version| version.as_str() == range)
    {
        return Ok(exact.clone());
    }
    let wanted = if range.is_empty() { "*" } else { range };
    let parsed = parse_range(wanted).map_err(|e| OciChartError::InvalidRange {
        range: wanted.to_owned(),
        message: e.to_string(),
    })?;
    versions
        .into_iter()
        .filter_map(|text| parse_version(&text).map(|version| (version, text)))
        .filter(|(version, _)| parsed.satisfies(version))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, text)| text)
        .ok_or_else(|| OciChartError::NoMatch {
            chart: chart.to_owned(),
            range: wanted.to_owned(),
        })
}

/// Access to one registry: credentials, TLS, `insecure` and the per-operation timeout.
pub struct OciChartClient {
    access: RegistryAccess,
    timeout: Duration,
}

impl OciChartClient {
    /// A client with `access`; a zero timeout means the registry client's default.
    pub fn new(access: RegistryAccess) -> Self {
        let timeout = if access.timeout.is_zero() {
            sluice_registry::DEFAULT_TIMEOUT
        } else {
            access.timeout
        };
        Self { access, timeout }
    }

    /// The registry access this client pulls with.
    pub fn access(&self) -> &RegistryAccess {
        &self.access
    }

    async fn timed<T>(
        &self,
        what: String,
        operation: impl Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, OciChartError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(OciChartError::Registry { what, source }),
            Err(_) => Err(OciChartError::Timeout {
                what,
                timeout: self.timeout,
            }),
        }
    }

    /// The version of `chart` in `repository` to pull for `range` (tags listed unless exact).
    pub async fn resolve(
        &self,
        repository: &OciChartRepository,
        chart: &str,
        range: &str,
    ) -> Result<String, OciChartError> {
        if is_exact_version(range) {
            return Ok(range.trim().to_owned());
        }
        let image = repository.image(chart);
        let tags = self
            .timed(
                format!("listing the tags of '{image}'"),
                sluice_registry::shared().list_tags(&image, &self.access),
            )
            .await?;
        select_version(chart, &tags, range)
    }

    /// Pulls chart `chart` at `version`: its manifest (by `digest` when one was verified, else by
    /// the version's tag), then its chart layer (at most `max_size`).
    pub async fn pull(
        &self,
        repository: &OciChartRepository,
        chart: &str,
        version: &str,
        digest: Option<&str>,
        max_size: u64,
    ) -> Result<Vec<u8>, OciChartError> {
        let image = repository.image(chart);
        let (reference, named) = match digest {
            Some(digest) => (digest.to_owned(), format!("{image}@{digest}")),
            None => {
                let tag = version_to_tag(version);
                let named = format!("{image}:{tag}");
                (tag, named)
            }
        };
        let registry = sluice_registry::shared();
        let manifest = self
            .timed(
                format!("pulling the manifest '{named}'"),
                registry.manifest(&image, &reference, &self.access),
            )
            .await?;
        let parsed = manifest.image().map_err(|e| {
            OciChartError::Manifest(format!(
                "the manifest of '{named}' is not an image manifest: {e}"
            ))
        })?;
        if let Some(config) = &parsed.config
            && config.media_type != CHART_CONFIG_MEDIA_TYPE
        {
            return Err(OciChartError::Manifest(format!(
                "'{named}' is not a Helm chart: its config media type is '{}', not '{CHART_CONFIG_MEDIA_TYPE}'; push it with helm push",
                config.media_type
            )));
        }
        let layer = parsed
            .layers
            .iter()
            .find(|layer| layer.media_type == CHART_LAYER_MEDIA_TYPE)
            .or_else(|| {
                parsed
                    .layers
                    .iter()
                    .find(|layer| layer.media_type == LEGACY_CHART_LAYER_MEDIA_TYPE)
            })
            .ok_or_else(|| {
                OciChartError::Manifest(format!(
                    "'{named}' has no layer of media type '{CHART_LAYER_MEDIA_TYPE}'; push it with helm push"
                ))
            })?;
        if layer.size > max_size {
            return Err(OciChartError::TooLarge {
                size: layer.size,
                limit: max_size,
            });
        }
        let capacity = usize::try_from(layer.size).unwrap_or(0).min(1 << 20);
        let mut bytes = Vec::with_capacity(capacity);
        self.timed(
            format!("downloading the chart layer of '{named}'"),
            registry.blob(&image, layer, &self.access, &mut bytes),
        )
        .await?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn repository_urls_name_host_and_chart_images() {
        let repo = OciChartRepository::parse("oci://127.0.0.1:5000/charts/").unwrap();
        assert_eq!(repo.host(), "127.0.0.1:5000");
        assert_eq!(repo.image("app"), "127.0.0.1:5000/charts/app");
        let root = OciChartRepository::parse("oci://ghcr.io").unwrap();
        assert_eq!(root.image("app"), "ghcr.io/app");
        assert!(OciChartRepository::parse("https://ghcr.io/charts").is_err());
        assert!(OciChartRepository::parse("oci://ghcr.io/charts/app:1.0.0").is_err());
        let error = OciChartRepository::parse("oci://user:s3cret@ghcr.io/x").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn tags_carry_build_metadata_as_underscores() {
        assert_eq!(version_to_tag("1.2.3+build.1"), "1.2.3_build.1");
        assert_eq!(tag_to_version("1.2.3_build.1"), "1.2.3+build.1");
        assert!(is_exact_version("1.2.3"));
        assert!(is_exact_version("1.2.3+4"));
        assert!(!is_exact_version("1.x"));
        assert!(!is_exact_version("*"));
        assert!(!is_exact_version(">=1.0.0"));
    }

    #[test]
    fn versions_are_selected_like_flux() {
        let list = tags(&["0.9.0", "1.0.0", "1.1.0_7", "2.0.0-rc.1", "latest", "1.0.5"]);
        assert_eq!(select_version("app", &list, "").unwrap(), "1.1.0+7");
        assert_eq!(select_version("app", &list, "*").unwrap(), "1.1.0+7");
        assert_eq!(select_version("app", &list, "~1.0").unwrap(), "1.0.5");
        assert_eq!(
            select_version("app", &list, ">=1.0.0, <1.1.0").unwrap(),
            "1.0.5"
        );
        assert_eq!(
            select_version("app", &list, ">=2.0.0-0").unwrap(),
            "2.0.0-rc.1"
        );
        assert_eq!(select_version("app", &list, "latest").unwrap(), "latest");
        assert!(matches!(
            select_version("app", &list, "3.x"),
            Err(OciChartError::NoMatch { .. })
        ));
        assert!(matches!(
            select_version("app", &[], "*"),
            Err(OciChartError::NoTags(_))
        ));
        assert!(matches!(
            select_version("app", &list, "not a range!"),
            Err(OciChartError::InvalidRange { .. })
        ));
    }
}
