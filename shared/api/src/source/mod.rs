//! `source.toolkit.fluxcd.io/v1`: GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart
//! and ExternalArtifact.

mod bucket;
mod external;
mod git;
mod helm;
mod oci;

pub use bucket::{
    Bucket, BucketProvider, BucketSpec, BucketStatus, BucketStsProvider, BucketStsSpec,
};
pub use external::{ExternalArtifact, ExternalArtifactSpec, ExternalArtifactStatus};
pub use git::{
    GitProvider, GitRepository, GitRepositoryInclude, GitRepositoryRef, GitRepositorySpec,
    GitRepositoryStatus, GitRepositoryVerification, GitVerificationMode,
};
pub use helm::{
    HelmChart, HelmChartReconcileStrategy, HelmChartSourceKind, HelmChartSpec, HelmChartStatus,
    HelmChartVerification, HelmRepository, HelmRepositoryProvider, HelmRepositorySpec,
    HelmRepositoryStatus, HelmRepositoryType, LocalHelmChartSourceReference,
};
pub use oci::{
    OCILayerOperation, OCILayerSelector, OCIProvider, OCIRepository, OCIRepositoryRef,
    OCIRepositorySpec, OCIRepositoryStatus, OCIRepositoryVerification, OCIVerificationProvider,
    OIDCIdentityMatch,
};

/// API group of the source kinds.
pub const GROUP: &str = "source.toolkit.fluxcd.io";
/// API version of the source kinds.
pub const VERSION: &str = "v1";
/// Interval of a HelmRepository without `spec.interval`.
pub const HELM_REPOSITORY_DEFAULT_INTERVAL: &str = "1m";
/// Default `spec.timeout` of every source kind.
pub const DEFAULT_TIMEOUT: &str = "60s";
/// Event metadata key carrying the artifact revision.
pub const REVISION_EVENT_METADATA_KEY: &str = "source.toolkit.fluxcd.io/revision";
/// Event metadata key carrying the artifact digest.
pub const DIGEST_EVENT_METADATA_KEY: &str = "source.toolkit.fluxcd.io/digest";
