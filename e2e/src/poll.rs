//! Polling until a condition holds: the one wait loop of the tests, benches and the demo.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

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
