//! Which reference to check out (Flux's `spec.ref` precedence) and resolving it against the
//! remote with at most one `ls-remote`.

use std::collections::BTreeMap;

use sluice_api::source::GitRepositoryRef;

use crate::advertisement::tail_matches;
use crate::remote::Session;
use crate::tags::highest_matching_tag;
use crate::{GitError, GitRemote};

/// The branch checked out when `spec.ref` is unset.
pub const DEFAULT_BRANCH: &str = "master";

/// Whether `sha` is a full commit id: 40 (SHA-1) or 64 (SHA-256) hexadecimal digits.
pub fn is_full_commit_id(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Refuses a pinned commit that is not a full commit id, before it reaches any `git` command.
pub(crate) fn check_commit_id(sha: &str) -> Result<(), GitError> {
    if is_full_commit_id(sha) {
        return Ok(());
    }
    Err(GitError::Operation(
        "spec.ref.commit must be a full commit id of 40 or 64 hexadecimal digits".to_owned(),
    ))
}

/// Which reference to check out, after Flux's precedence (commit > name > semver > tag > branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefSelector {
    Branch(String),
    Tag(String),
    Semver(String),
    Name(String),
    Commit { sha: String, branch: Option<String> },
}

impl RefSelector {
    /// Applies Flux's precedence to `spec.ref`; the `master` branch when unset.
    pub fn from_spec(reference: Option<&GitRepositoryRef>) -> Self {
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let Some(reference) = reference else {
            return Self::Branch(DEFAULT_BRANCH.to_owned());
        };
        if let Some(sha) = non_empty(&reference.commit) {
            return Self::Commit {
                sha,
                branch: non_empty(&reference.branch),
            };
        }
        if let Some(name) = non_empty(&reference.name) {
            return Self::Name(name);
        }
        if let Some(range) = non_empty(&reference.semver) {
            return Self::Semver(range);
        }
        if let Some(tag) = non_empty(&reference.tag) {
            return Self::Tag(tag);
        }
        Self::Branch(non_empty(&reference.branch).unwrap_or_else(|| DEFAULT_BRANCH.to_owned()))
    }
}

impl RefSelector {
    /// What to fetch without asking the remote first (the commit is then read from the fetch);
    /// `None` for a SemVer range, which needs the remote's tags.
    pub fn unresolved(&self) -> Option<ResolvedRef> {
        match self {
            Self::Commit { sha, branch } => Some(ResolvedRef::commit(sha, branch.as_deref())),
            Self::Semver(_) => None,
            Self::Branch(branch) => {
                Some(ResolvedRef::named(format!("refs/heads/{branch}"), branch))
            }
            Self::Tag(tag) => Some(ResolvedRef::named(format!("refs/tags/{tag}"), tag)),
            Self::Name(name) => Some(ResolvedRef::named(name.clone(), name)),
        }
    }
}

/// A reference resolved against the remote: what to fetch and the revision it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// The refspec or commit to fetch.
    pub fetch: String,
    /// The pointer name in the revision (`main`, `v1.0.0`, `refs/pull/1/head`), if any.
    pub name: Option<String>,
    /// The commit SHA, when known before fetching.
    pub commit: Option<String>,
    /// The branch to fetch in full when a shallow fetch of `commit` is refused.
    pub fallback_branch: Option<String>,
}

impl ResolvedRef {
    /// The ref `fetch`, shown as `name` in the revision, with its commit not yet known.
    fn named(fetch: String, name: &str) -> Self {
        Self {
            fetch,
            name: Some(name.to_owned()),
            commit: None,
            fallback_branch: None,
        }
    }

    /// A pinned commit, fetched alone or, when refused, with `branch` (all branches when unset).
    fn commit(sha: &str, branch: Option<&str>) -> Self {
        Self {
            fetch: sha.to_owned(),
            name: branch.map(str::to_owned),
            commit: Some(sha.to_owned()),
            fallback_branch: branch.map(str::to_owned),
        }
    }

    /// The Flux revision for `commit`: `<name>@sha1:<commit>` or `sha1:<commit>`.
    pub fn revision(&self, commit: &str) -> String {
        match &self.name {
            Some(name) => format!("{name}@sha1:{commit}"),
            None => format!("sha1:{commit}"),
        }
    }
}

impl GitRemote {
    /// Lists remote refs (`ls-remote`) matching `patterns`, with annotated tags peeled.
    async fn ls_remote(
        &self,
        session: &Session,
        tags_only: bool,
        patterns: &[&str],
    ) -> Result<BTreeMap<String, String>, GitError> {
        // An annotated tag's commit is on its peeled `<ref>^{}` line, which a pattern without
        // the suffix does not match.
        let peeled_patterns: Vec<String> = patterns.iter().map(|p| format!("{p}^{{}}")).collect();
        let patterns: Vec<&str> = patterns
            .iter()
            .copied()
            .chain(peeled_patterns.iter().map(String::as_str))
            .collect();
        let listed = match self.advertised_refs().await {
            Some(advertised) => advertised
                .into_iter()
                .filter(|(_, name)| !tags_only || name.starts_with("refs/tags/"))
                .filter(|(_, name)| {
                    patterns.is_empty() || patterns.iter().any(|p| tail_matches(name, p))
                })
                .collect(),
            None => self.ls_remote_cli(session, tags_only, &patterns).await?,
        };
        let mut refs = BTreeMap::new();
        let mut peeled = BTreeMap::new();
        for (sha, name) in listed {
            match name.strip_suffix("^{}") {
                Some(base) => {
                    peeled.insert(base.to_owned(), sha);
                }
                None => {
                    refs.insert(name, sha);
                }
            }
        }
        for (name, sha) in peeled {
            refs.insert(name, sha);
        }
        Ok(refs)
    }

    /// `git ls-remote` as `(sha, ref)` pairs.
    async fn ls_remote_cli(
        &self,
        session: &Session,
        tags_only: bool,
        patterns: &[&str],
    ) -> Result<Vec<(String, String)>, GitError> {
        let mut args = vec!["-c", self.list_protocol(), "ls-remote"];
        if tags_only {
            args.push("--tags");
        }
        args.extend(["--", self.url.as_str()]);
        args.extend_from_slice(patterns);
        let output = self.run(session, None, &args).await?;
        Ok(output
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(sha, name)| (sha.to_owned(), name.to_owned()))
            .collect())
    }

    /// Resolves `selector` with at most one `ls-remote` (none for a commit).
    pub async fn resolve(&self, selector: &RefSelector) -> Result<ResolvedRef, GitError> {
        let mut resolved = match selector {
            RefSelector::Commit { sha, branch } => {
                check_commit_id(sha)?;
                return Ok(ResolvedRef::commit(sha, branch.as_deref()));
            }
            RefSelector::Semver(range) => return self.resolve_semver(range).await,
            RefSelector::Branch(branch) => {
                ResolvedRef::named(format!("refs/heads/{branch}"), branch)
            }
            RefSelector::Tag(tag) => ResolvedRef::named(format!("refs/tags/{tag}"), tag),
            RefSelector::Name(name) => ResolvedRef::named(name.clone(), name),
        };
        let session = self.session().await?;
        let refs = self
            .ls_remote(&session, false, &[resolved.fetch.as_str()])
            .await?;
        let Some(sha) = refs.get(&resolved.fetch) else {
            self.ensure_not_empty(&session).await?;
            return Err(GitError::Operation(format!(
                "reference '{}' not found in '{}'; check spec.ref",
                resolved.fetch,
                crate::remote::display_url(&self.url)
            )));
        };
        if let RefSelector::Branch(branch) = selector {
            // Fetching the listed commit spares the server a second ref listing (`ls-refs`).
            resolved.fetch = sha.clone();
            resolved.fallback_branch = Some(branch.clone());
        }
        resolved.commit = Some(sha.clone());
        Ok(resolved)
    }

    async fn resolve_semver(&self, range: &str) -> Result<ResolvedRef, GitError> {
        let session = self.session().await?;
        let tags = self.ls_remote(&session, true, &[]).await?;
        if tags.is_empty() {
            self.ensure_not_empty(&session).await?;
        }
        let (tag, sha) = highest_matching_tag(range, &tags)?;
        Ok(ResolvedRef {
            fetch: format!("refs/tags/{tag}"),
            name: Some(tag),
            commit: Some(sha),
            fallback_branch: None,
        })
    }

    async fn ensure_not_empty(&self, session: &Session) -> Result<(), GitError> {
        if self.ls_remote(session, false, &[]).await?.is_empty() {
            return Err(GitError::EmptyRepository(crate::remote::display_url(
                &self.url,
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_flux() {
        let reference =
            |json: serde_json::Value| -> GitRepositoryRef { serde_json::from_value(json).unwrap() };
        assert_eq!(
            RefSelector::from_spec(None),
            RefSelector::Branch("master".into())
        );
        assert_eq!(
            RefSelector::from_spec(Some(&reference(
                serde_json::json!({"branch": "dev", "tag": "v1"})
            ))),
            RefSelector::Tag("v1".into())
        );
        assert_eq!(
            RefSelector::from_spec(Some(&reference(
                serde_json::json!({"tag": "v1", "semver": "1.x"})
            ))),
            RefSelector::Semver("1.x".into())
        );
        assert_eq!(
            RefSelector::from_spec(Some(&reference(
                serde_json::json!({"semver": "1.x", "name": "refs/pull/1/head"})
            ))),
            RefSelector::Name("refs/pull/1/head".into())
        );
        assert_eq!(
            RefSelector::from_spec(Some(&reference(
                serde_json::json!({"branch": "dev", "name": "refs/x", "commit": "abc"})
            ))),
            RefSelector::Commit {
                sha: "abc".into(),
                branch: Some("dev".into())
            }
        );
        assert_eq!(
            RefSelector::from_spec(Some(&reference(serde_json::json!({})))),
            RefSelector::Branch("master".into())
        );
    }

    #[test]
    fn revisions() {
        let named = ResolvedRef {
            fetch: "refs/heads/main".into(),
            name: Some("main".into()),
            commit: None,
            fallback_branch: None,
        };
        assert_eq!(named.revision("abc"), "main@sha1:abc");
        let bare = ResolvedRef {
            name: None,
            ..named
        };
        assert_eq!(bare.revision("abc"), "sha1:abc");
    }
}
