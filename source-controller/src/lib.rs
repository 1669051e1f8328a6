//! Sluice source-controller: turns GitRepository, OCIRepository and Bucket objects into versioned,
//! content-addressed tar.gz artifacts and serves them over HTTP, the way Flux's source-controller does.

pub mod bucket_index;
pub mod cosign;
pub mod helm;
pub mod ignore;
pub mod oci;
pub mod reconcile;
pub mod s3;
pub mod status;
pub mod storage;
pub mod url_policy;
pub mod verify;

pub use reconcile::bucket::BucketLimits;
pub use reconcile::helmrepository::HelmLimits;
pub use reconcile::{SourceContext, run_controllers};
pub use sluice_artifact::serve as server;
pub use storage::{Storage, StorageConfig};
