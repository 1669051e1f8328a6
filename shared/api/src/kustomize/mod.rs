//! `kustomize.toolkit.fluxcd.io/v1`: Kustomization.

mod inventory;
mod types;

pub use inventory::{ObjectId, ObjectIdError, ResourceInventory, ResourceRef};
pub use types::{
    BuildMetadataOption, CommonMetadata, CrossNamespaceSourceReference, CustomHealthCheck,
    Decryption, DecryptionProvider, DeletionPolicy, DependencyReference, DriftIgnoreRule, Image,
    Kustomization, KustomizationSpec, KustomizationStatus, Patch, PostBuild, Selector, SourceKind,
    SubstituteKind, SubstituteReference, SubstituteStrategy,
};

/// API group of Kustomization.
pub const GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// API version of Kustomization.
pub const VERSION: &str = "v1";

/// Labels kustomize-controller puts on every applied object.
pub mod labels {
    /// Name of the owning Kustomization.
    pub const NAME: &str = "kustomize.toolkit.fluxcd.io/name";
    /// Namespace of the owning Kustomization.
    pub const NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";
}

/// Per-object annotations (also honoured as labels) that change how an object is applied.
///
/// Values are compared case-insensitively.
pub mod annotations {
    /// Server-side apply policy: [`SSA_MERGE`], [`SSA_IF_NOT_PRESENT`] or [`SSA_IGNORE`].
    pub const SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";
    /// [`DISABLED`] stops the object from being reconciled.
    pub const RECONCILE: &str = "kustomize.toolkit.fluxcd.io/reconcile";
    /// [`DISABLED`] keeps the object when it leaves the build.
    pub const PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";
    /// [`ENABLED`] recreates the object when an immutable field changes.
    pub const FORCE: &str = "kustomize.toolkit.fluxcd.io/force";
    /// [`DISABLED`] skips post-build variable substitution for the object.
    pub const SUBSTITUTE: &str = "kustomize.toolkit.fluxcd.io/substitute";
    /// [`DISABLED`] skips SOPS decryption for the object.
    pub const DECRYPT: &str = "kustomize.toolkit.fluxcd.io/decrypt";

    /// Turns a per-object behaviour on.
    pub const ENABLED: &str = "enabled";
    /// Turns a per-object behaviour off.
    pub const DISABLED: &str = "disabled";
    /// Merge the object's fields with the in-cluster state.
    pub const SSA_MERGE: &str = "Merge";
    /// Create the object only if it does not exist.
    pub const SSA_IF_NOT_PRESENT: &str = "IfNotPresent";
    /// Never apply the object.
    pub const SSA_IGNORE: &str = "Ignore";
}
