//! What the commit-status providers share: the commit, state, context and description of an
//! event, and the repository named by `address`.

use reqwest::Url;
use sluice_api::notification::ProviderType;
use sluice_runtime::events::NotificationEvent;

use super::{ProviderError, Target, is_error};

/// The commit status an event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// The commit hash.
    pub sha: String,
    /// `true` for success, `false` for failure.
    pub success: bool,
    /// `<kind>/<name>/<first segment of the Provider's UID>`, lowercase.
    pub context: String,
    /// The reason split into lowercase words, e.g. "reconciliation succeeded".
    pub description: String,
}

/// The status for `event`, or `None` when it is in progress or names no commit.
pub fn commit_status(target: &Target, event: &NotificationEvent) -> Option<CommitStatus> {
    if event.reason == "Progressing" {
        return None;
    }
    let sha = ["commit", "originRevision", "revision"]
        .iter()
        .find_map(|key| event.metadata.get(*key))
        .and_then(|revision| commit_hash(revision))?;
    let object = &event.involved_object;
    let uid = target.provider_uid.split('-').next().unwrap_or_default();
    let context = format!(
        "{}/{}/{}",
        object.kind.as_deref().unwrap_or_default(),
        object.name.as_deref().unwrap_or_default(),
        uid
    )
    .to_lowercase();
    Some(CommitStatus {
        sha,
        success: !is_error(event),
        context,
        description: words(&event.reason),
    })
}

/// The hash of a Flux revision: `main@sha1:<hex>`, `sha1:<hex>`, legacy `main/<hex>` or `<hex>`.
pub fn commit_hash(revision: &str) -> Option<String> {
    let hash = match revision.rsplit_once(':') {
        Some((_, hash)) => hash,
        None => revision.rsplit('/').next().unwrap_or(revision),
    };
    (hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit())).then(|| hash.to_owned())
}

/// `ReconciliationSucceeded` → `reconciliation succeeded`.
fn words(reason: &str) -> String {
    let mut out = String::new();
    for (index, c) in reason.chars().enumerate() {
        if c.is_uppercase() && index > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A git repository address: `https://host/owner/repo(.git)`, `ssh://git@host/owner/repo` or
/// `git@host:owner/repo.git`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `scheme://host[:port]` to reach the service's API (https for SSH addresses).
    pub origin: String,
    pub host: String,
    /// Path segments without the `.git` suffix, e.g. `["owner", "repo"]`.
    pub path: Vec<String>,
}

impl Repository {
    /// Parses `address`; errors name the type, never the address.
    pub fn parse(kind: ProviderType, address: &str) -> Result<Self, ProviderError> {
        let address = address.trim();
        if address.is_empty() {
            return Err(ProviderError::MissingAddress { kind });
        }
        let normalized = match address.split_once("://") {
            Some(_) => address.to_owned(),
            None => match address.split_once(':') {
                Some((user_host, path)) => format!("ssh://{user_host}/{path}"),
                None => address.to_owned(),
            },
        };
        let invalid = |reason: &str| ProviderError::InvalidAddress {
            kind,
            reason: reason.to_owned(),
        };
        let url = Url::parse(&normalized).map_err(|e| invalid(&e.to_string()))?;
        let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_owned();
        let scheme = if url.scheme() == "http" {
            "http"
        } else {
            "https"
        };
        let origin = match url.port() {
            Some(port) if url.scheme() != "ssh" => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        };
        let path: Vec<String> = url
            .path()
            .trim_matches('/')
            .trim_end_matches(".git")
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned)
            .collect();
        if path.len() < 2 {
            return Err(invalid("the repository path needs at least owner and name"));
        }
        Ok(Self { origin, host, path })
    }

    /// The last two path segments: owner and repository name.
    pub fn owner_and_name(&self) -> (&str, &str) {
        let n = self.path.len();
        (&self.path[n - 2], &self.path[n - 1])
    }
}
