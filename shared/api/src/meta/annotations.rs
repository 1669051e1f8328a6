//! Annotation keys and the finalizer shared by every Flux controller.

/// Finalizer added by source-controller and kustomize-controller before any other work.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Setting this annotation to a new value asks for an immediate reconcile; see [`super::ReconcileRequest`].
pub const RECONCILE_REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Together with an equal `requestedAt`, asks for a forced reconcile (tracked in `status.lastHandledForceAt`).
pub const FORCE_REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
