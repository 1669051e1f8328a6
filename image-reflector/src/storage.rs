//! Tag storage: one file per ImageRepository (`imagerepository/<namespace>/<name>/tags.txt`
//! under `--storage-path`, one tag per line, replaced by an atomic rename) behind an in-memory
//! LRU cache bounded in bytes. The files are a rebuildable cache: a missing file forces a rescan.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

const KIND_DIR: &str = "imagerepository";
const TAGS_FILE: &str = "tags.txt";

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} '{path}' failed: {source}; check --storage-path is writable and has space")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which ImageRepository the tags belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryKey {
    pub namespace: String,
    pub name: String,
}

impl RepositoryKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl std::fmt::Display for RepositoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The stored tags of one repository, in the registry's order, and their revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTags {
    pub tags: Vec<String>,
    pub revision: String,
}

impl StoredTags {
    /// Tags with Flux's revision: the decimal Adler-32 of their JSON array.
    pub fn new(tags: Vec<String>) -> Self {
        let json = serde_json::to_vec(&tags).unwrap_or_default();
        let revision = adler32(&json).to_string();
        Self { tags, revision }
    }

    fn size(&self) -> usize {
        self.tags.iter().map(|tag| tag.len() + 24).sum::<usize>() + 64
    }
}

/// Adler-32 (RFC 1950), the checksum Flux's default storage uses as scan revision.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5_552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The tag files and the bounded cache in front of them; share one per process.
pub struct TagStore {
    root: PathBuf,
    cache: Mutex<Lru>,
}

impl TagStore {
    /// A store under `root` (created if missing) caching at most `cache_bytes` of tags.
    pub fn new(root: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let root = root.join(KIND_DIR);
        std::fs::create_dir_all(&root).map_err(|source| StoreError::Io {
            action: "creating",
            path: root.clone(),
            source,
        })?;
        Ok(Self {
            root,
            cache: Mutex::new(Lru::new(cache_bytes)),
        })
    }

    fn path(&self, key: &RepositoryKey) -> PathBuf {
        self.root
            .join(&key.namespace)
            .join(&key.name)
            .join(TAGS_FILE)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the tags of `key` atomically; returns them with their revision.
    pub async fn put(
        &self,
        key: &RepositoryKey,
        tags: Vec<String>,
    ) -> Result<Arc<StoredTags>, StoreError> {
        let stored = Arc::new(StoredTags::new(tags));
        let path = self.path(key);
        let mut contents = stored.tags.join("\n");
        contents.push('\n');
        write_atomically(&path, contents.into_bytes()).await?;
        self.cache().insert(key.clone(), stored.clone());
        Ok(stored)
    }

    /// The tags of `key`, from the cache or its file; `None` when never stored.
    pub async fn get(&self, key: &RepositoryKey) -> Result<Option<Arc<StoredTags>>, StoreError> {
        if let Some(stored) = self.cache().get(key) {
            return Ok(Some(stored));
        }
        let path = self.path(key);
        let contents = match tokio::fs::read_to_string(&path).await {
            Ok(contents) => contents,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        let tags = contents
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        let stored = Arc::new(StoredTags::new(tags));
        self.cache().insert(key.clone(), stored.clone());
        Ok(Some(stored))
    }

    /// Deletes the tags of `key` (nothing to do when absent).
    pub async fn remove(&self, key: &RepositoryKey) -> Result<(), StoreError> {
        self.cache().remove(key);
        let dir = self.root.join(&key.namespace).join(&key.name);
        match tokio::fs::remove_dir_all(&dir).await {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(StoreError::Io {
                action: "removing",
                path: dir,
                source: error,
            }),
            _ => Ok(()),
        }
    }

    /// Deletes the tags of every repository not in `live`; returns how many were removed.
    pub async fn retain(&self, live: &HashSet<RepositoryKey>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in self.stored_keys().await? {
            if !live.contains(&key) {
                self.remove(&key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn stored_keys(&self) -> Result<Vec<RepositoryKey>, StoreError> {
        let mut keys = Vec::new();
        for namespace in list_dir(&self.root).await? {
            for name in list_dir(&self.root.join(&namespace)).await? {
                keys.push(RepositoryKey {
                    namespace: namespace.clone(),
                    name,
                });
            }
        }
        Ok(keys)
    }

    /// Bytes of tags held in memory (bounded by the cache size given to [`TagStore::new`]).
    pub fn cached_bytes(&self) -> usize {
        self.cache().bytes
    }
}

async fn list_dir(dir: &Path) -> Result<Vec<String>, StoreError> {
    let io = |source| StoreError::Io {
        action: "listing",
        path: dir.to_owned(),
        source,
    };
    let mut entries = tokio::fs::read_dir(dir).await.map_err(io)?;
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(io)? {
        if let Ok(name) = entry.file_name().into_string()
            && !name.starts_with('.')
        {
            names.push(name);
        }
    }
    Ok(names)
}

async fn write_atomically(path: &Path, contents: Vec<u8>) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(path).to_owned();
    let target = path.to_owned();
    let written = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        let io = |action, source| StoreError::Io {
            action,
            path: target.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("creating the directory of", e))?;
        let mut file =
            tempfile::NamedTempFile::new_in(&dir).map_err(|e| io("creating a file next to", e))?;
        std::io::Write::write_all(&mut file, &contents).map_err(|e| io("writing", e))?;
        file.as_file().sync_all().map_err(|e| io("syncing", e))?;
        file.persist(&target)
            .map_err(|e| io("renaming into", e.error))?;
        Ok(())
    })
    .await;
    written.unwrap_or_else(|join| {
        Err(StoreError::Io {
            action: "writing",
            path: path.to_owned(),
            source: std::io::Error::other(join.to_string()),
        })
    })
}

/// Least-recently-used entries evicted once their total size exceeds the budget.
struct Lru {
    budget: usize,
    bytes: usize,
    tick: u64,
    entries: HashMap<RepositoryKey, (Arc<StoredTags>, u64)>,
}

impl Lru {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &RepositoryKey) -> Option<Arc<StoredTags>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(stored, used)| {
            *used = tick;
            stored.clone()
        })
    }

    fn insert(&mut self, key: RepositoryKey, stored: Arc<StoredTags>) {
        self.remove(&key);
        let size = stored.size();
        if size > self.budget {
            return;
        }
        self.tick += 1;
        self.bytes += size;
        self.entries.insert(key, (stored, self.tick));
        while self.bytes > self.budget {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => self.remove(&key),
                None => break,
            }
        }
    }

    fn remove(&mut self, key: &RepositoryKey) {
        if let Some((stored, _)) = self.entries.remove(key) {
            self.bytes -= stored.size();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long = vec![0xffu8; 100_000];
        let naive = long.iter().fold((1u64, 0u64), |(a, b), &byte| {
            let a = (a + u64::from(byte)) % 65_521;
            (a, (b + a) % 65_521)
        });
        assert_eq!(u64::from(adler32(&long)), (naive.1 << 16) | naive.0);
    }

    #[test]
    fn revision_is_the_adler32_of_the_json_array() {
        let stored = StoredTags::new(tags(&["1.0.0", "latest"]));
        assert_eq!(
            stored.revision,
            adler32(br#"["1.0.0","latest"]"#).to_string()
        );
    }

    #[tokio::test]
    async fn tags_survive_a_new_store_and_are_removed() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|source| StoreError::Io {
            action: "creating",
            path: PathBuf::new(),
            source,
        })?;
        let key = RepositoryKey::new("apps", "podinfo");
        let store = TagStore::new(dir.path(), 1024)?;
        assert_eq!(store.get(&key).await?, None);
        let put = store.put(&key, tags(&["b", "a"])).await?;
        let reopened = TagStore::new(dir.path(), 1024)?;
        assert_eq!(reopened.get(&key).await?, Some(put));
        let other = RepositoryKey::new("apps", "other");
        reopened.put(&other, Vec::new()).await?;
        assert_eq!(
            reopened.get(&other).await?.map(|s| s.tags.len()),
            Some(0),
            "an empty scan is stored, so it does not force a rescan"
        );
        let live = HashSet::from([key.clone()]);
        assert_eq!(reopened.retain(&live).await?, 1);
        assert_eq!(TagStore::new(dir.path(), 0)?.get(&other).await?, None);
        reopened.remove(&key).await?;
        assert_eq!(reopened.get(&key).await?, None);
        Ok(())
    }

    #[test]
    fn cache_stays_within_its_byte_budget() {
        let mut lru = Lru::new(1_000);
        for i in 0..50 {
            let stored = Arc::new(StoredTags::new(tags(&["1.0.0", "1.0.1", "1.0.2"])));
            lru.insert(RepositoryKey::new("ns", &i.to_string()), stored);
            assert!(lru.bytes <= 1_000);
        }
        assert!(lru.get(&RepositoryKey::new("ns", "49")).is_some());
        assert!(lru.get(&RepositoryKey::new("ns", "0")).is_none());
    }
}
