//! Flux's duplicate-event limiter: one event per key per interval, in a bounded table.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Keys remembered at most; beyond that expired keys are swept, then the oldest dropped.
pub const MAX_KEYS: usize = 100_000;

/// Admits the first event of each key per `interval`; a zero interval admits everything.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    max_keys: usize,
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl RateLimiter {
    /// A limiter with Flux's semantics for `--rate-limit-interval`.
    pub fn new(interval: Duration, max_keys: usize) -> Self {
        Self {
            interval,
            max_keys: max_keys.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event with `key` may pass now; records it when it does.
    pub fn admit(&self, key: [u8; 32]) -> bool {
        if self.interval.is_zero() {
            return true;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(first) = seen.get(&key)
            && now.duration_since(*first) < self.interval
        {
            return false;
        }
        if seen.len() >= self.max_keys {
            seen.retain(|_, first| now.duration_since(*first) < self.interval);
            if seen.len() >= self.max_keys
                && let Some(oldest) = seen
                    .iter()
                    .min_by_key(|(_, first)| **first)
                    .map(|(k, _)| *k)
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_interval_are_refused_and_the_table_stays_bounded() {
        let limiter = RateLimiter::new(Duration::from_secs(300), 2);
        assert!(limiter.admit([1; 32]));
        assert!(!limiter.admit([1; 32]));
        assert!(limiter.admit([2; 32]));
        assert!(limiter.admit([3; 32]));
        assert!(limiter.seen.lock().unwrap().len() <= 2);
        let open = RateLimiter::new(Duration::ZERO, 2);
        assert!(open.admit([1; 32]) && open.admit([1; 32]));
    }
}
