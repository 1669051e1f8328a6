//! The object index of a Bucket: which keys are fetched (ignore rules, safe paths), the fetch's
//! size budget, and the revision Flux computes: `sha256:` over sorted `"<key> <etag>\n"` lines.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::ignore::{
    DEFAULT_EXCLUSIONS, IgnoreError, IgnoreRules, SOURCE_IGNORE_FILE, VCS_PATTERNS,
};
use crate::s3::S3Error;

/// Keys and ETags of the objects that make up the artifact, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtagIndex {
    entries: BTreeMap<String, String>,
}

impl EtagIndex {
    pub fn insert(&mut self, key: String, etag: String) {
        self.entries.insert(key, etag);
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(key, etag)` pairs in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The revision: `sha256:<hex>` of the sorted `"<key> <etag>\n"` lines.
    pub fn revision(&self) -> String {
        let mut hasher = Sha256::new();
        for (key, etag) in &self.entries {
            hasher.update(key.as_bytes());
            hasher.update(b" ");
            hasher.update(etag.as_bytes());
            hasher.update(b"\n");
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// Rules for object keys: VCS patterns, Flux's default exclusions unless `spec_ignore` is set,
/// then the bucket's root `.sourceignore`, then `spec.ignore` (later rules win).
pub fn key_rules(
    source_ignore: Option<&str>,
    spec_ignore: Option<&str>,
) -> Result<IgnoreRules, IgnoreError> {
    let mut rules = IgnoreRules::default();
    rules.add_lines(&VCS_PATTERNS.join("\n"), "")?;
    if spec_ignore.is_none() {
        rules.add_lines(&DEFAULT_EXCLUSIONS.join("\n"), "")?;
    }
    if let Some(text) = source_ignore {
        rules.add_lines(text, "")?;
    }
    if let Some(text) = spec_ignore {
        rules.add_lines(text, "")?;
    }
    rules.compile()?;
    Ok(rules)
}

/// Whether the object `key` is left out of the index: a directory marker, the `.sourceignore`
/// file itself, or a key excluded by `rules` (directly or through a parent directory).
pub fn is_key_excluded(rules: &IgnoreRules, key: &str) -> bool {
    if key.ends_with('/') || key == SOURCE_IGNORE_FILE {
        return true;
    }
    let mut end = 0;
    while let Some(offset) = key[end..].find('/') {
        end += offset;
        if rules.is_excluded(&key[..end], true) {
            return true;
        }
        end += 1;
    }
    rules.is_excluded(key, false)
}

/// Whether `key` maps to a path inside the download directory: relative, no empty, `.` or
/// `..` segment, no backslash or NUL.
pub fn is_safe_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains(['\\', '\0'])
        && key
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// A shared byte budget for the objects of one fetch.
#[derive(Debug)]
pub struct SizeBudget {
    remaining: AtomicU64,
    limit: u64,
}

impl SizeBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            remaining: AtomicU64::new(limit),
            limit,
        }
    }

    /// Takes `bytes` from the budget, failing once it is exhausted.
    pub fn take(&self, bytes: u64) -> Result<(), S3Error> {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .map(|_| ())
            .map_err(|_| S3Error::TooLarge { limit: self.limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_is_sha256_of_sorted_key_etag_lines() {
        let mut index = EtagIndex::default();
        index.insert("b.yaml".into(), "2".into());
        index.insert("a.yaml".into(), "1".into());
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(b"a.yaml 1\nb.yaml 2\n"))
        );
        assert_eq!(index.revision(), expected);
        assert_eq!(
            EtagIndex::default().revision(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn default_rules_and_overrides() {
        let rules = key_rules(None, None).unwrap();
        assert!(is_key_excluded(&rules, "logo.png"));
        assert!(is_key_excluded(&rules, ".github/workflows/ci.yaml"));
        assert!(is_key_excluded(&rules, "dir/"));
        assert!(is_key_excluded(&rules, ".sourceignore"));
        assert!(!is_key_excluded(&rules, "deploy/app.yaml"));
        let rules = key_rules(Some("deploy/secret.yaml\n"), None).unwrap();
        assert!(is_key_excluded(&rules, "deploy/secret.yaml"));
        assert!(is_key_excluded(&rules, "logo.png"));
        let rules = key_rules(Some("*.md\n"), Some("/*\n!/deploy\n")).unwrap();
        assert!(is_key_excluded(&rules, "top.yaml"));
        assert!(!is_key_excluded(&rules, "deploy/app.yaml"));
        assert!(is_key_excluded(&rules, "deploy/readme.md"));
        assert!(is_key_excluded(&rules, ".git/config"));
        let rules = key_rules(None, Some("secret.yaml\n")).unwrap();
        assert!(
            !is_key_excluded(&rules, "logo.png"),
            "spec.ignore replaces defaults"
        );
        assert!(is_key_excluded(&rules, "deploy/secret.yaml"));
    }

    #[test]
    fn unsafe_keys_are_refused() {
        assert!(is_safe_key("a/b.yaml"));
        for key in ["", "/abs", "a//b", "../x", "a/./b", "a\\b"] {
            assert!(!is_safe_key(key), "{key}");
        }
    }

    #[test]
    fn size_budget_refuses_overdraw() {
        let budget = SizeBudget::new(10);
        assert!(budget.take(6).is_ok());
        assert!(matches!(
            budget.take(5),
            Err(S3Error::TooLarge { limit: 10 })
        ));
        assert!(budget.take(4).is_ok());
    }
}
