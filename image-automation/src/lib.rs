//! Sluice's image-automation-controller, API-compatible with Flux's (`image.toolkit.fluxcd.io`):
//! for each ImageUpdateAutomation it writes the images selected by ImagePolicies into the marked
//! places of a GitRepository's manifests, commits and pushes.

pub mod reconcile;
pub mod setters;
pub mod template;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "image-automation-controller";
