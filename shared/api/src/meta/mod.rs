//! Types and constants shared by all Flux APIs (Flux's `fluxcd/pkg/apis/meta`).

mod acl;
mod annotations;
mod artifact;
pub mod condition_type;
mod history;
pub mod reason;
mod reconcile;
mod references;

pub use acl::{AccessFrom, NamespaceSelector};
pub use annotations::{
    FINALIZER, FORCE_REQUESTED_AT_ANNOTATION, RECONCILE_REQUESTED_AT_ANNOTATION,
};
pub use artifact::{ARTIFACT_DIGEST_PATTERN, Artifact};
pub use history::{MAX_HISTORY_SIZE, Snapshot};
pub use reconcile::ReconcileRequest;

/// Longest condition message Sluice's controllers write (longer ones are cut on a character boundary).
pub const MAX_CONDITION_MESSAGE_LENGTH: usize = 20_000;
pub use references::{
    KubeConfigReference, LocalObjectReference, NamespacedObjectKindReference,
    NamespacedObjectReference, SecretKeyReference,
};
