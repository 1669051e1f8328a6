//! Polling until a condition holds: the one wait loop of the tests, benches and the demo.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sluice_api::FluxObject;
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use tokio::time::Instant;

/// How long [`wait_object`] waits, and how often it reads.
pub const OBJECT_WAIT: Duration = Duration::from_secs(90);
const OBJECT_POLL: Duration = Duration::from_millis(200);

/// Waiting for an object failed: the apiserver refused a request, or the check never held.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Timeout(#[from] Timeout),
}

/// A probe that did not succeed within its timeout; `last` is what its final attempt reported.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
pub struct Timeout {
    pub what: String,
    pub waited: Duration,
    pub last: String,
}

/// Calls `probe` every `interval` until it returns `Ok(value)`; `Err` is "not yet" with the state
/// seen, the last one kept in [`Timeout`]. To stop on a hard error, a probe returns `Ok(Err(e))`.
pub async fn eventually<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, Timeout>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let last = match probe().await {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Timeout {
                what: what.to_string(),
                waited: now - started,
                last: last.to_string(),
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// Reads object `name` until `check` holds (at most [`OBJECT_WAIT`]); a timeout reports the
/// last status seen.
pub async fn wait_object<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    check: impl Fn(&K) -> bool,
) -> Result<K, WaitError>
where
    K: Clone + DeserializeOwned + Serialize + Debug,
{
    let what = format!("{name}: {what}");
    let object = eventually(&what, OBJECT_WAIT, OBJECT_POLL, || async {
        match api.get_opt(name).await {
            Ok(Some(object)) if check(&object) => Ok(Ok(object)),
            Ok(Some(object)) => Err(serde_json::to_value(&object)
                .map(|value| format!("status {}", value["status"]))
                .unwrap_or_default()),
            Ok(None) => Err("not found".to_owned()),
            Err(error) => Ok(Err(error)),
        }
    })
    .await??;
    Ok(object)
}

/// Asks for a reconcile of `name` with `reconcile.fluxcd.io/requestedAt: token` and waits until
/// its controller has handled it.
pub async fn request_reconcile<K>(api: &Api<K>, name: &str, token: &str) -> Result<K, WaitError>
where
    K: FluxObject + Clone + DeserializeOwned + Serialize + Debug,
{
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_object(api, name, "the reconcile request to be handled", |object| {
        object.last_handled_reconcile_at() == Some(token)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_ready_value() {
        let mut calls = 0;
        let value = eventually(
            "three calls",
            Duration::from_secs(5),
            Duration::from_secs(1),
            || {
                calls += 1;
                std::future::ready(if calls == 3 { Ok(calls) } else { Err(calls) })
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_last_state() {
        let mut calls = 0;
        let error = eventually(
            "never",
            Duration::from_secs(2),
            Duration::from_millis(500),
            || {
                calls += 1;
                std::future::ready(Err::<(), _>(format!("attempt {calls}")))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(calls, 5, "probes at 0, 0.5, 1, 1.5 and 2 seconds");
        assert_eq!(
            error.to_string(),
            "timed out after 2s waiting for never; last seen: attempt 5"
        );
    }
}
