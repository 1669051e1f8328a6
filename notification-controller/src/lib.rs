//! Sluice's notification-controller, API-compatible with Flux's
//! (`notification.toolkit.fluxcd.io`): it receives the other controllers' events on the Flux
//! event HTTP API and forwards them to Providers as Alerts select, and turns webhooks into
//! reconcile requests through Receivers.

pub mod dora;
pub mod observe;
pub mod receiver;
pub mod reconcile;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "notification-controller";
