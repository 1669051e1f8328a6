//! A bounded in-memory cache of parsed repository indexes, keyed by the stored artifact path.
//! Artifact files are named by their digest, so an entry never goes stale; it only expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::index::RepositoryIndex;

/// `--helm-cache-max-size` indexes kept for `--helm-cache-ttl` after their last use.
pub struct IndexCache {
    max_entries: usize,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<RepositoryIndex>)>>,
}

impl Default for IndexCache {
    /// Off, as Flux's default (`--helm-cache-max-size=0`).
    fn default() -> Self {
        Self::new(0, Duration::from_secs(15 * 60))
    }
}

impl IndexCache {
    /// A cache of at most `max_entries` indexes (0 disables it), each kept `ttl` after its last use.
    pub fn new(max_entries: usize, ttl: Duration) -> Self {
        Self {
            max_entries,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The index stored at `path`, if cached and unexpired; a hit extends its life by the TTL.
    pub fn get(&self, path: &str) -> Option<Arc<RepositoryIndex>> {
        if self.max_entries == 0 {
            return None;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get_mut(path) {
            Some((expires, index)) if *expires > now => {
                *expires = now + self.ttl;
                Some(index.clone())
            }
            Some(_) => {
                entries.remove(path);
                None
            }
            None => None,
        }
    }

    /// Caches `index` for `path`, dropping expired entries and, when full, the one closest to expiry.
    pub fn insert(&self, path: &str, index: Arc<RepositoryIndex>) {
        if self.max_entries == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (expires, _)| *expires > now);
        if entries.len() >= self.max_entries && !entries.contains_key(path) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(path.to_owned(), (now + self.ttl, index));
    }

    /// Number of cached indexes.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Arc<RepositoryIndex> {
        Arc::new(RepositoryIndex::parse(b"apiVersion: v1\nentries: {}\n").unwrap())
    }

    #[test]
    fn bounded_by_entries_and_off_at_zero() {
        let cache = IndexCache::new(2, Duration::from_secs(60));
        cache.insert("a", index());
        cache.insert("b", index());
        assert!(cache.get("a").is_some(), "a hit extends a's life past b's");
        cache.insert("c", index());
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b").is_none(), "b was closest to expiry");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());

        let off = IndexCache::default();
        off.insert("a", index());
        assert!(off.is_empty() && off.get("a").is_none());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = IndexCache::new(4, Duration::from_millis(20));
        cache.insert("a", index());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
        assert!(cache.is_empty());
    }
}
