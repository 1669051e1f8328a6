//! Sluice's notification-controller, API-compatible with Flux's
//! (`notification.toolkit.fluxcd.io`): it will receive the other controllers' events on the Flux
//! event HTTP API and forward them to Providers as Alerts select, and turn webhooks into reconcile
//! requests through Receivers. Not implemented yet; the binary exits with status 2.

pub mod observe;
pub mod reconcile;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "notification-controller";
