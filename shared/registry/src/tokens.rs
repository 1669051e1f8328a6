//! A bounded cache of registry bearer tokens, keyed by registry, scope and the credentials that
//! obtained them (so a token fetched with one Secret never serves a caller with another).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Tokens without `expires_in` live 60 seconds (Docker token specification).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// Identifies the token for one registry, scope and set of credentials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    registry: String,
    scope: String,
    credentials: [u8; 32],
}

impl TokenKey {
    /// The key for `scope` on `registry`, with a SHA-256 fingerprint of the credentials.
    pub(crate) fn new(registry: &str, scope: &str, auth: Option<&(String, String)>) -> Self {
        let mut hasher = Sha256::new();
        if let Some((username, password)) = auth {
            hasher.update(username.as_bytes());
            hasher.update([0]);
            hasher.update(password.as_bytes());
        }
        Self {
            registry: registry.to_owned(),
            scope: scope.to_owned(),
            credentials: hasher.finalize().into(),
        }
    }
}

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// Tokens until shortly before they expire; at most `capacity` entries.
pub(crate) struct TokenCache {
    entries: HashMap<TokenKey, CachedToken>,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The token for `key` while it is fresh.
    pub(crate) fn get(&mut self, key: &TokenKey, now: Instant) -> Option<String> {
        match self.entries.get(key) {
            Some(cached) if cached.refresh_at > now => Some(cached.token.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `token` for 90% of `expires_in`; evicts expired entries, then the soonest to expire.
    pub(crate) fn insert(
        &mut self,
        key: TokenKey,
        token: String,
        expires_in: Option<Duration>,
        now: Instant,
    ) {
        if self.capacity == 0 {
            return;
        }
        let lifetime = expires_in.unwrap_or(DEFAULT_LIFETIME).mul_f64(0.9);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, cached| cached.refresh_at > now);
            while self.entries.len() >= self.capacity {
                let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, cached)| cached.refresh_at)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                self.entries.remove(&soonest);
            }
        }
        let refresh_at = now + lifetime;
        self.entries.insert(key, CachedToken { token, refresh_at });
    }

    /// Forgets the token for `key`, e.g. after the registry refused it.
    pub(crate) fn remove(&mut self, key: &TokenKey) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: &str, password: &str) -> TokenKey {
        TokenKey::new("r.io", scope, Some(&("u".into(), password.into())))
    }

    #[test]
    fn tokens_expire_and_depend_on_credentials() {
        let mut cache = TokenCache::new(4);
        let now = Instant::now();
        cache.insert(
            key("a", "pw"),
            "t1".into(),
            Some(Duration::from_secs(100)),
            now,
        );
        assert_eq!(cache.get(&key("a", "pw"), now), Some("t1".into()));
        assert_eq!(cache.get(&key("a", "other"), now), None);
        assert_eq!(cache.get(&TokenKey::new("r.io", "a", None), now), None);
        assert_eq!(
            cache.get(&key("a", "pw"), now + Duration::from_secs(91)),
            None
        );
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = TokenCache::new(3);
        let now = Instant::now();
        for i in 0..10u64 {
            let lifetime = Some(Duration::from_secs(100 + i));
            cache.insert(key(&format!("s{i}"), "pw"), format!("t{i}"), lifetime, now);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&key("s9", "pw"), now), Some("t9".into()));
        assert_eq!(cache.get(&key("s0", "pw"), now), None);
        let mut disabled = TokenCache::new(0);
        disabled.insert(key("a", "pw"), "t".into(), None, now);
        assert_eq!(disabled.len(), 0);
    }
}
