//! Sluice's notification-controller, API-compatible with Flux's (`notification.toolkit.fluxcd.io`):
//! the event server receives the other controllers' events on Flux's event HTTP API, matches
//! them against Alerts and delivers them to Providers (chat, incident, commit-status and generic
//! webhooks) through bounded per-Provider queues with retries; Receivers turn webhooks into
//! reconcile requests; the DORA metrics are read from the events.

pub mod delivery;
pub mod dispatch;
pub mod dora;
pub mod matching;
pub mod metadata;
pub mod observe;
pub mod providers;
pub mod ratelimit;
pub mod receiver;
pub mod server;
pub mod statics;

/// The controller's name: field manager, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "notification-controller";
