//! Fetching artifacts: verified downloads ([`Downloader`]) and an unpacked cache keyed by digest
//! ([`ArtifactFetcher`]), with errors that name the caller's own flags through [`FetchHints`].

mod cache;
mod download;

pub use cache::{ArtifactFetcher, CachedArtifact, FetchOptions, SOURCE_HOST_OVERRIDE_ENV};
pub use download::{Downloader, resolve_url, resolve_url_with};

use crate::digest::DigestError;

/// Remedies a caller names in fetch errors, so messages point at its own server and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchHints {
    /// What serves artifacts, as in "check {server} is reachable".
    pub server: &'static str,
    /// How to raise the size limit, as in "{raise_limit} or shrink the source".
    pub raise_limit: &'static str,
    /// What follows a 404, as in "the source has not stored it yet, {after_not_found}".
    pub after_not_found: &'static str,
    /// How to allow another artifact host.
    pub allowed_hosts: &'static str,
}

impl FetchHints {
    /// Hints naming no particular server or flag.
    pub const GENERIC: Self = Self {
        server: "the server",
        raise_limit: "raise the size limit",
        after_not_found: "retry later",
        allowed_hosts: "allow the host in the fetch options",
    };
}

/// Fetching or unpacking an artifact failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "artifact {url} not found (HTTP 404); the source has not stored it yet, {}",
        .hints.after_not_found
    )]
    NotFound {
        url: String,
        hints: &'static FetchHints,
    },
    #[error(
        "downloading artifact {url} failed with HTTP {status}; check {} is serving it",
        .hints.server
    )]
    HttpStatus {
        url: String,
        status: u16,
        hints: &'static FetchHints,
    },
    #[error("downloading artifact {url} failed: {reason}; check {} is reachable", .hints.server)]
    Transport {
        url: String,
        reason: String,
        hints: &'static FetchHints,
    },
    #[error("artifact URL {url:?} is invalid: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "artifact {url} is larger than the {limit}-byte limit; {} or shrink the source",
        .hints.raise_limit
    )]
    TooLarge {
        url: String,
        limit: u64,
        hints: &'static FetchHints,
    },
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
    #[error(
        "artifact {url} failed digest verification: expected {expected}, got {actual}; the file changed after the source recorded it"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("artifact {url} is not a valid tar.gz archive: {reason}")]
    InvalidArchive { url: String, reason: String },
    #[error("writing the download of {url} failed: {source}; check the destination is writable")]
    Write { url: String, source: std::io::Error },
    #[error(
        "caching artifact {url} in {dir} failed: {source}; check the cache directory is writable"
    )]
    Cache {
        url: String,
        dir: String,
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the server has no such artifact (a 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROLLER_HINTS: FetchHints = FetchHints {
        allowed_hosts: "add it to --artifact-allowed-hosts",
        server: "source-controller",
        raise_limit: "raise --artifact-max-size",
        after_not_found: "retrying after --requeue-dependency",
    };

    #[test]
    fn messages_name_the_callers_remedies() {
        let url = "http://source/a.tar.gz".to_owned();
        let not_found = FetchError::NotFound {
            url: url.clone(),
            hints: &CONTROLLER_HINTS,
        };
        assert_eq!(
            not_found.to_string(),
            "artifact http://source/a.tar.gz not found (HTTP 404); the source has not stored it yet, retrying after --requeue-dependency"
        );
        let too_large = FetchError::TooLarge {
            url: url.clone(),
            limit: 10,
            hints: &CONTROLLER_HINTS,
        };
        assert!(
            too_large
                .to_string()
                .ends_with("raise --artifact-max-size or shrink the source")
        );
        let generic = FetchError::Transport {
            url,
            reason: "refused".to_owned(),
            hints: &FetchHints::GENERIC,
        };
        assert!(
            generic
                .to_string()
                .ends_with("check the server is reachable")
        );
    }
}
