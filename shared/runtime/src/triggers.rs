//! Watches that trigger reconciles, each backing off on its own. kube-runtime's `Controller`
//! otherwise backs off all its trigger watches together: one failing watch (a 410 after an
//! apiserver restart, a 403) paused every trigger, and the caches they fill, for up to 30 s.

use std::fmt::Debug;
use std::time::Duration;

use futures::Stream;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
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

/// The objects `api` sees, from a watcher that backs off on its own after an error.
pub fn backing_off<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher(api, config).default_backoff().touched_objects()
}

/// `Controller::watches` with the watch backing off on its own; use it instead in
/// [`crate::ControllerRunner::customize`].
pub trait WatchesBackingOff<K: Resource> {
    #[must_use]
    fn watches_backing_off<Other, I>(
        self,
        api: Api<Other>,
        config: watcher::Config,
        mapper: impl Fn(Other) -> I + Sync + Send + 'static,
    ) -> Self
    where
        Other: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send;
}

impl<K> WatchesBackingOff<K> for Controller<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Debug + Eq + std::hash::Hash + Clone + Unpin,
{
    fn watches_backing_off<Other, I>(
        self,
        api: Api<Other>,
        config: watcher::Config,
        mapper: impl Fn(Other) -> I + Sync + Send + 'static,
    ) -> Self
    where
        Other: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        self.watches_stream(backing_off(api, config), mapper)
    }
}
