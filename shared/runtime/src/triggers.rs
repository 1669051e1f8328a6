//! Watches that trigger reconciles, each backing off on its own. kube-runtime's `Controller`
//! otherwise backs off all its trigger watches together: one failing watch (a 410 after an
//! apiserver restart, a 403) paused every trigger, and the caches they fill, for up to 30 s.

use std::fmt::Debug;
use std::time::Duration;

use futures::Stream;
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// The `Controller`'s shared trigger backoff, turned off: every trigger stream given to
/// [`crate::ControllerRunner`] backs off on its own ([`backing_off`]).
pub(crate) struct NoSharedBackoff;

impl Iterator for NoSharedBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoSharedBackoff {
    fn reset(&mut self) {}
}

/// The objects `api` sees, from a watcher that backs off on its own after an error: give it to
/// `Controller::watches_stream` in [`crate::ControllerRunner::customize`] instead of using
/// `Controller::watches`, whose watch would not back off.
pub fn backing_off<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher(api, config).default_backoff().touched_objects()
}
