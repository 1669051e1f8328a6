//! `image.toolkit.fluxcd.io/v1`: ImageRepository, ImagePolicy and ImageUpdateAutomation.

mod automation;
mod policy;
mod repository;

pub use automation::{
    CommitSpec, CommitUser, CrossNamespaceSourceReference, DEFAULT_COMMIT_MESSAGE, GitCheckoutSpec,
    GitSpec, ImageUpdateAutomation, ImageUpdateAutomationSpec, ImageUpdateAutomationStatus,
    PushSpec, SigningKey, UpdateStrategy,
};
pub use policy::{
    AlphabeticalPolicy, ImagePolicy, ImagePolicyChoice, ImagePolicySpec, ImagePolicyStatus,
    ImageRef, NumericalPolicy, ReflectionPolicy, SemVerPolicy, SortOrder, TagFilter,
};
pub use repository::{
    ImageProvider, ImageRepository, ImageRepositorySpec, ImageRepositoryStatus, ScanResult,
};

/// API group of the image kinds.
pub const GROUP: &str = "image.toolkit.fluxcd.io";
/// API version of the image kinds.
pub const VERSION: &str = "v1";
/// Default `spec.exclusionList`: drops cosign signature tags.
pub const DEFAULT_EXCLUSION_LIST: &[&str] = &[r"^.*\.sig$"];
/// Most entries in `exclusionList`.
pub const MAX_EXCLUSION_LIST_LENGTH: usize = 25;
/// How many tags `status.lastScanResult.latestTags` holds.
pub const LATEST_TAGS_COUNT: usize = 10;
/// ImagePolicy `interval` when `digestReflectionPolicy` is `Always` and no interval is set.
pub const DEFAULT_DIGEST_REFRESH_INTERVAL: &str = "10m";

#[cfg(test)]
mod tests;
