//! `source.toolkit.fluxcd.io/v1`: GitRepository, OCIRepository and Bucket.

mod bucket;
mod git;
mod oci;

pub use bucket::{
    Bucket, BucketProvider, BucketSpec, BucketStatus, BucketStsProvider, BucketStsSpec,
};
pub use git::{
    GitProvider, GitRepository, GitRepositoryInclude, GitRepositoryRef, GitRepositorySpec,
    GitRepositoryStatus, GitRepositoryVerification, GitVerificationMode,
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
/// Default `spec.timeout` of every source kind.
pub const DEFAULT_TIMEOUT: &str = "60s";
/// Event metadata key carrying the artifact revision.
pub const REVISION_EVENT_METADATA_KEY: &str = "source.toolkit.fluxcd.io/revision";
/// Event metadata key carrying the artifact digest.
pub const DIGEST_EVENT_METADATA_KEY: &str = "source.toolkit.fluxcd.io/digest";
