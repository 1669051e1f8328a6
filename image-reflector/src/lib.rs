//! Sluice's image-reflector-controller, API-compatible with Flux's (`image.toolkit.fluxcd.io`):
//! it scans container registries for the tags of each ImageRepository ([`reconcile::imagerepository`]),
//! keeps them in [`storage`], and selects the latest allowed tag per ImagePolicy
//! ([`reconcile::imagepolicy`], with the tag selection in [`policy`]).

pub mod policy;
pub mod reconcile;
pub mod storage;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "image-reflector-controller";
