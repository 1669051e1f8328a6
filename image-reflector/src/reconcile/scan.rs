//! Pure ImageRepository scan rules: when to scan (Flux's decision order), the exclusion list,
//! and the `latestTags` of a scan result.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use regex::Regex;
use sluice_api::FluxObject;
use sluice_api::image::{ImageRepository, LATEST_TAGS_COUNT};

/// Below this much time left of the interval, a scan is due (Flux's 1s slack).
const INTERVAL_SLACK: Duration = Duration::from_secs(1);

/// Why a scan happens now, in Flux's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanReason {
    NeverScanned,
    Requested,
    NewImage,
    ExclusionListChanged,
    NoTagsStored,
    RetryAfterFailure,
    Interval,
}

impl ScanReason {
    /// Flux's wording, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeverScanned => "first scan",
            Self::Requested => "reconcile requested",
            Self::NewImage => "new image name",
            Self::ExclusionListChanged => "updated exclusion list",
            Self::NoTagsStored => "no tags in database",
            Self::RetryAfterFailure => "retry after a failed scan",
            Self::Interval => "triggered by interval",
        }
    }
}

/// Scan now, or wait this long before the next scan is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanDecision {
    Scan(ScanReason),
    Wait(Duration),
}

/// What the decision looks at besides the object: its canonical name, whether its tags are
/// stored, and the current time.
pub struct ScanInputs<'a> {
    pub canonical_name: &'a str,
    pub exclusion_list: &'a [String],
    pub tags_stored: bool,
    /// The last reconcile failed, so its scan is retried (with the runner's backoff).
    pub retrying: bool,
    pub interval: Duration,
    pub now: Timestamp,
}

/// Flux's `shouldScan`: never scanned → requested → new image → exclusion list changed → no
/// tags stored → (ours) retry of a failed scan → interval elapsed; otherwise wait for the rest
/// of the interval.
pub fn decide(object: &ImageRepository, inputs: &ScanInputs<'_>) -> ScanDecision {
    let status = object.status.clone().unwrap_or_default();
    let Some(scan_time) = status
        .last_scan_result
        .as_ref()
        .and_then(|r| r.scan_time.as_ref())
    else {
        return ScanDecision::Scan(ScanReason::NeverScanned);
    };
    if object.reconcile_request().requested {
        return ScanDecision::Scan(ScanReason::Requested);
    }
    if status.canonical_image_name.as_deref() != Some(inputs.canonical_name) {
        return ScanDecision::Scan(ScanReason::NewImage);
    }
    if status.observed_exclusion_list != inputs.exclusion_list {
        return ScanDecision::Scan(ScanReason::ExclusionListChanged);
    }
    if !inputs.tags_stored {
        return ScanDecision::Scan(ScanReason::NoTagsStored);
    }
    if inputs.retrying {
        return ScanDecision::Scan(ScanReason::RetryAfterFailure);
    }
    let elapsed = inputs
        .now
        .duration_since(scan_time.0)
        .try_into()
        .unwrap_or(Duration::ZERO);
    match inputs.interval.checked_sub(elapsed) {
        Some(remaining) if remaining >= INTERVAL_SLACK => ScanDecision::Wait(remaining),
        _ => ScanDecision::Scan(ScanReason::Interval),
    }
}

/// An `exclusionList` entry that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?} in spec.exclusionList: {source}; fix or remove it")]
pub struct ExclusionError {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// The compiled exclusion list; a tag matching any entry is dropped.
pub struct Exclusions(Vec<Regex>);

impl Exclusions {
    /// Compiles every pattern; the first invalid one is the error.
    pub fn compile(patterns: &[String]) -> Result<Self, ExclusionError> {
        patterns
            .iter()
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| ExclusionError {
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// `tags` without the excluded ones, in their order.
    pub fn filter(&self, tags: Vec<String>) -> Vec<String> {
        tags.into_iter()
            .filter(|tag| !self.0.iter().any(|pattern| pattern.is_match(tag)))
            .collect()
    }
}

/// Flux's `latestTags`: the first ten tags in descending lexicographic order.
pub fn latest_tags(tags: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = tags.iter().collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
        .into_iter()
        .take(LATEST_TAGS_COUNT)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use sluice_api::image::{ImageRepositoryStatus, ScanResult};
    use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;

    use super::*;

    const CANONICAL: &str = "ghcr.io/org/app";

    fn scanned(at: Timestamp) -> ImageRepository {
        let mut object: ImageRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "app"},
            "spec": {"image": CANONICAL, "interval": "5m"},
        }))
        .unwrap();
        object.status = Some(ImageRepositoryStatus {
            canonical_image_name: Some(CANONICAL.to_owned()),
            observed_exclusion_list: object.effective_exclusion_list(),
            last_scan_result: Some(ScanResult {
                revision: "1".to_owned(),
                tag_count: 1,
                scan_time: Some(Time(at)),
                latest_tags: vec!["1.0.0".to_owned()],
            }),
            ..ImageRepositoryStatus::default()
        });
        object
    }

    fn inputs<'a>(exclusions: &'a [String], stored: bool, now: Timestamp) -> ScanInputs<'a> {
        ScanInputs {
            canonical_name: CANONICAL,
            exclusion_list: exclusions,
            tags_stored: stored,
            retrying: false,
            interval: Duration::from_secs(300),
            now,
        }
    }

    #[test]
    fn decision_follows_flux_order() {
        let start = Timestamp::UNIX_EPOCH;
        let now = start + Duration::from_secs(60);
        let object = scanned(start);
        let exclusions = object.effective_exclusion_list();
        let decide_now =
            |object: &ImageRepository, stored| decide(object, &inputs(&exclusions, stored, now));
        assert_eq!(
            decide_now(&object, true),
            ScanDecision::Wait(Duration::from_secs(240))
        );
        assert_eq!(
            decide_now(&object, false),
            ScanDecision::Scan(ScanReason::NoTagsStored)
        );
        let retrying = ScanInputs {
            retrying: true,
            ..inputs(&exclusions, true, now)
        };
        assert_eq!(
            decide(&object, &retrying),
            ScanDecision::Scan(ScanReason::RetryAfterFailure)
        );
        let mut changed = object.clone();
        if let Some(status) = changed.status.as_mut() {
            status.observed_exclusion_list = vec!["^x$".to_owned()];
        }
        assert_eq!(
            decide_now(&changed, false),
            ScanDecision::Scan(ScanReason::ExclusionListChanged)
        );
        if let Some(status) = changed.status.as_mut() {
            status.canonical_image_name = Some("ghcr.io/org/old".to_owned());
        }
        assert_eq!(
            decide_now(&changed, false),
            ScanDecision::Scan(ScanReason::NewImage)
        );
        changed.metadata.annotations = Some(BTreeMap::from([(
            RECONCILE_REQUESTED_AT_ANNOTATION.to_owned(),
            "now".to_owned(),
        )]));
        assert_eq!(
            decide_now(&changed, false),
            ScanDecision::Scan(ScanReason::Requested)
        );
        changed.status = None;
        assert_eq!(
            decide_now(&changed, false),
            ScanDecision::Scan(ScanReason::NeverScanned)
        );
        let late = inputs(&exclusions, true, start + Duration::from_millis(299_500));
        assert_eq!(
            decide(&object, &late),
            ScanDecision::Scan(ScanReason::Interval)
        );
    }

    #[test]
    fn exclusions_drop_matching_tags_and_name_a_bad_pattern() {
        let defaults = Exclusions::compile(&[r"^.*\.sig$".to_owned()]).unwrap();
        let tags = ["1.0.0", "sha256-abc.sig", "latest"]
            .map(String::from)
            .to_vec();
        assert_eq!(defaults.filter(tags), ["1.0.0", "latest"]);
        let error = Exclusions::compile(&["ok".to_owned(), "(".to_owned()])
            .err()
            .unwrap();
        assert_eq!(error.pattern, "(");
        assert!(error.to_string().contains("spec.exclusionList"), "{error}");
    }

    #[test]
    fn latest_tags_are_ten_in_descending_lexicographic_order() {
        let tags: Vec<String> = (0..12).map(|i| format!("1.0.{i}")).collect();
        let latest = latest_tags(&tags);
        assert_eq!(latest.len(), 10);
        assert_eq!(latest[0], "1.0.9");
        assert_eq!(latest[1], "1.0.8");
        assert!(latest.contains(&"1.0.11".to_owned()));
    }
}
