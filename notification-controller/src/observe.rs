//! Hooks that see every event the event server accepts, such as the DORA metrics.

use sluice_runtime::events::NotificationEvent;

/// Sees each accepted event once, after validation and before Alert matching; must not block.
pub trait EventObserver: Send + Sync {
    /// Records `event`.
    fn observe(&self, event: &NotificationEvent);
}
