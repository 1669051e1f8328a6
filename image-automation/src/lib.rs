//! Sluice's image-automation-controller, API-compatible with Flux's (`image.toolkit.fluxcd.io`):
//! for each ImageUpdateAutomation it will write the tags selected by ImagePolicies into the
//! manifests of a GitRepository and push the commit. Not implemented yet; the binary exits with
//! status 2.

pub mod reconcile;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "image-automation-controller";
