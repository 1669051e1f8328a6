//! Sluice source-controller: turns GitRepository and OCIRepository objects into versioned,
//! content-addressed tar.gz artifacts and serves them over HTTP, the way Flux's source-controller does.

pub mod ignore;
pub mod oci;
pub mod reconcile;
pub mod status;
pub mod storage;
pub mod url_policy;
pub mod verify;

pub use reconcile::{SourceContext, run_controllers};
pub use sluice_artifact::serve as server;
pub use storage::{Storage, StorageConfig};
