//! Condition types written by source-controller and kustomize-controller, and their polarity.
//!
//! Negative-polarity ("abnormal-true") conditions are only present while `True`; controllers
//! delete them instead of setting them to `False`.

/// Summary condition on every Flux object.
pub const READY: &str = "Ready";
/// The controller is working on the object (negative polarity).
pub const RECONCILING: &str = "Reconciling";
/// The object will not make progress without a spec change (negative polarity).
pub const STALLED: &str = "Stalled";
/// Result of the Kustomization health assessment.
pub const HEALTHY: &str = "Healthy";
/// The source's artifact exists in storage.
pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
/// A newer upstream revision or include was detected (negative polarity).
pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
/// Fetching from upstream failed (negative polarity).
pub const FETCH_FAILED: &str = "FetchFailed";
/// An included GitRepository is missing or has no artifact (negative polarity).
pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
/// Result of signature verification (both polarities).
pub const SOURCE_VERIFIED: &str = "SourceVerified";
/// A local storage operation failed (negative polarity).
pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
/// Building the artifact failed (negative polarity; HelmChart).
pub const BUILD_FAILED: &str = "BuildFailed";

/// Negative-polarity conditions of GitRepository, OCIRepository and Bucket.
pub const SOURCE_NEGATIVE_POLARITY: &[&str] = &[
    FETCH_FAILED,
    INCLUDE_UNAVAILABLE,
    ARTIFACT_OUTDATED,
    STORAGE_OPERATION_FAILED,
    STALLED,
    RECONCILING,
];

/// Negative-polarity conditions of Kustomization.
pub const KUSTOMIZATION_NEGATIVE_POLARITY: &[&str] = &[STALLED, RECONCILING];

/// Negative-polarity conditions of ImageRepository and ImagePolicy.
pub const IMAGE_NEGATIVE_POLARITY: &[&str] = &[STALLED, RECONCILING];

/// Whether source-controller or kustomize-controller treats `condition_type` as negative polarity.
pub fn is_negative_polarity(condition_type: &str) -> bool {
    SOURCE_NEGATIVE_POLARITY.contains(&condition_type)
        || KUSTOMIZATION_NEGATIVE_POLARITY.contains(&condition_type)
        || condition_type == BUILD_FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polarity() {
        for negative in [
            FETCH_FAILED,
            INCLUDE_UNAVAILABLE,
            ARTIFACT_OUTDATED,
            STORAGE_OPERATION_FAILED,
            STALLED,
            RECONCILING,
            BUILD_FAILED,
        ] {
            assert!(is_negative_polarity(negative), "{negative}");
        }
        for positive in [
            READY,
            HEALTHY,
            ARTIFACT_IN_STORAGE,
            SOURCE_VERIFIED,
            "Unknown",
        ] {
            assert!(!is_negative_polarity(positive), "{positive}");
        }
    }
}
