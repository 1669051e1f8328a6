//! Sluice's image-reflector-controller, API-compatible with Flux's (`image.toolkit.fluxcd.io`):
//! it will scan container registries for the tags of each ImageRepository and select the latest
//! allowed tag per ImagePolicy. The tag selection ([`policy`]) is done; the reconcilers are not
//! implemented yet and the binary exits with status 2.

pub mod policy;
pub mod reconcile;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "image-reflector-controller";
