//! Condition reasons used by source-controller and kustomize-controller.

/// Generic success.
pub const SUCCEEDED: &str = "Succeeded";
/// Generic failure.
pub const FAILED: &str = "Failed";
/// Work is in progress.
pub const PROGRESSING: &str = "Progressing";
/// Work is in progress after a failed attempt.
pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
/// Reconciliation is suspended.
pub const SUSPENDED: &str = "Suspended";
/// A dependency is not ready yet.
pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
/// The whole reconciliation succeeded.
pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
/// The whole reconciliation failed.
pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
/// A referenced object could not be read or is not allowed.
pub const ACCESS_DENIED: &str = "AccessDenied";
/// A CEL expression in the spec does not compile.
pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
/// The spec uses a feature whose gate is off.
pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";

/// The source artifact could not be fetched or is missing.
pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
/// Building the manifests (or a HelmChart) failed.
pub const BUILD_FAILED: &str = "BuildFailed";
/// Health assessment failed.
pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
/// Health assessment was cancelled.
pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
/// Garbage collection failed.
pub const PRUNE_FAILED: &str = "PruneFailed";

/// A Git operation succeeded.
pub const GIT_OPERATION_SUCCEEDED: &str = "GitOperationSucceeded";
/// A Git operation failed.
pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
/// Credentials are missing or were refused.
pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
/// The source URL is not valid.
pub const URL_INVALID: &str = "URLInvalid";
/// The remote Git repository has no commits.
pub const EMPTY_GIT_REPOSITORY: &str = "EmptyGitRepository";
/// The provider configuration is not valid.
pub const INVALID_PROVIDER_CONFIGURATION: &str = "InvalidProviderConfiguration";
/// The signature verification mode is not valid for the reference.
pub const INVALID_VERIFICATION_MODE: &str = "InvalidVerificationMode";
/// The commit signature did not verify.
pub const INVALID_COMMIT_SIGNATURE: &str = "InvalidCommitSignature";
/// The tag signature did not verify.
pub const INVALID_TAG_SIGNATURE: &str = "InvalidTagSignature";
/// Verification could not be performed.
pub const VERIFICATION_ERROR: &str = "VerificationError";
/// Pulling an OCI artifact failed.
pub const OCI_ARTIFACT_PULL_FAILED: &str = "OCIArtifactPullFailed";
/// Processing an OCI layer failed.
pub const OCI_ARTIFACT_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
/// Listing or fetching bucket objects succeeded.
pub const BUCKET_OPERATION_SUCCEEDED: &str = "BucketOperationSucceeded";
/// Listing or fetching bucket objects failed.
pub const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";
/// A new upstream revision was detected.
pub const NEW_REVISION: &str = "NewRevision";
/// An included artifact changed.
pub const INCLUDE_CHANGE: &str = "IncludeChange";
/// A referenced object was not found.
pub const NOT_FOUND: &str = "NotFound";
/// A referenced source has no artifact yet.
pub const NO_ARTIFACT: &str = "NoArtifact";
/// The stored artifact already matches upstream.
pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";

/// Creating a storage directory failed.
pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
/// A stat call on a storage path failed.
pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
/// Reading from storage failed.
pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
/// Taking the artifact lock failed.
pub const ACQUIRE_LOCK_FAILED: &str = "AcquireLockFailed";
/// A storage path is not valid.
pub const INVALID_PATH: &str = "InvalidPath";
/// Creating or extracting an archive failed.
pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
/// Updating a storage symlink failed.
pub const SYMLINK_UPDATE_FAILED: &str = "SymlinkUpdateFailed";
/// A cache operation failed.
pub const CACHE_OPERATION_FAILED: &str = "CacheOperationFailed";
