//! Shallow checkouts of a resolved reference, optionally sparse and with submodules; plain
//! HTTP(S) checkouts without `.git` are fetched in process (`fetch`), anything else by `git`.

use std::path::Path;

use crate::fetch::InProcessError;
use crate::refs::check_commit_id;
use crate::remote::Session;
use crate::{GitError, GitRemote, RefSelector, ResolvedRef};

/// A checked-out commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOut {
    pub commit: String,
    pub revision: String,
    /// First line of the commit message.
    pub subject: String,
    /// Committer time in seconds since the Unix epoch, when the commit records one.
    pub committed_at: Option<i64>,
    /// The tag the commit was checked out through, if the reference is a tag.
    pub tag: Option<CheckedOutTag>,
}

/// A tag reference that was checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOutTag {
    pub name: String,
    /// The annotated tag object's SHA; `None` for a lightweight tag.
    pub object: Option<String>,
}

/// What a checkout needs besides the commit's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckoutOptions {
    /// Directories of a cone-mode sparse checkout; all when empty.
    pub sparse: Vec<String>,
    pub submodules: bool,
    /// Keep the `.git` directory (e.g. to verify signatures), which only `git` writes.
    pub keep_git_dir: bool,
}

impl GitRemote {
    /// Shallow-fetches `resolved` into `dir` (which should not exist yet) and checks it out.
    pub async fn checkout(
        &self,
        resolved: &ResolvedRef,
        dir: &Path,
        options: &CheckoutOptions,
    ) -> Result<CheckedOut, GitError> {
        if let Some(sha) = &resolved.commit {
            check_commit_id(sha)?;
        }
        if self.fetches_in_process(dir, options) {
            match self.checkout_in_process(resolved, dir).await {
                Ok(checked_out) => return Ok(checked_out),
                Err(InProcessError::Git(error)) => return Err(error),
                Err(InProcessError::Unsupported(reason)) => {
                    tracing::debug!(url = %crate::remote::display_url(&self.url), %reason, "checking out with git instead");
                    remove_partial_checkout(dir)?;
                }
            }
        }
        self.checkout_with_git(resolved, dir, &options.sparse, options.submodules)
            .await
    }

    /// Plain HTTP(S) into a new directory, without `.git`, a sparse cone or submodules.
    fn fetches_in_process(&self, dir: &Path, options: &CheckoutOptions) -> bool {
        self.lists_in_process()
            && !options.keep_git_dir
            && options.sparse.is_empty()
            && !options.submodules
            && !dir.exists()
    }

    /// The `git` CLI checkout: clone or init and fetch, then sparse and submodule setup.
    async fn checkout_with_git(
        &self,
        resolved: &ResolvedRef,
        dir: &Path,
        sparse: &[String],
        submodules: bool,
    ) -> Result<CheckedOut, GitError> {
        let session = self.session().await?;
        let cwd = Some(dir);
        let fetched = match resolved.fetch.strip_prefix("refs/heads/") {
            // One process instead of init, fetch and checkout, with `origin` for submodules.
            Some(branch) if sparse.is_empty() => {
                self.clone_branch(&session, dir, branch).await?;
                None
            }
            _ => Some(self.fetch_resolved(&session, dir, resolved).await?),
        };
        if let Some(fetched) = &fetched {
            if !sparse.is_empty() {
                let mut args = vec!["sparse-checkout", "set", "--cone", "--"];
                args.extend(sparse.iter().map(String::as_str));
                self.run(&session, cwd, &args).await?;
            }
            self.run(&session, cwd, &["checkout", "-q", "--detach", fetched])
                .await?;
        }
        let head = self
            .run(
                &session,
                cwd,
                &["log", "-1", "--format=%H%n%ct%n%s", "HEAD"],
            )
            .await?;
        let mut lines = head.splitn(3, '\n');
        let commit = lines.next().unwrap_or_default().trim().to_owned();
        let committed_at = lines.next().and_then(|time| time.trim().parse().ok());
        let subject = lines.next().unwrap_or_default().trim().to_owned();
        for directory in sparse {
            if !dir.join(directory.trim_matches('/')).is_dir() {
                return Err(GitError::Operation(format!(
                    "sparse checkout directory '{directory}' does not exist at commit {commit}; fix spec.sparseCheckout"
                )));
            }
        }
        if submodules {
            if fetched.is_some() {
                self.run(&session, cwd, &["remote", "add", "origin", &self.url])
                    .await?;
            }
            self.run(
                &session,
                cwd,
                &["submodule", "update", "--init", "--recursive", "--depth=1"],
            )
            .await?;
        }
        let tag = match &fetched {
            Some(fetched) => fetched_tag(dir, resolved, fetched, &commit)?,
            None => None,
        };
        Ok(CheckedOut {
            revision: resolved.revision(&commit),
            commit,
            subject,
            committed_at,
            tag,
        })
    }

    /// Checks out `selector` without resolving it first, one round trip less; a failed fetch is
    /// explained by resolving, so a missing ref or an empty repository reads as after `resolve`.
    pub async fn checkout_unresolved(
        &self,
        selector: &RefSelector,
        dir: &Path,
        options: &CheckoutOptions,
    ) -> Result<CheckedOut, GitError> {
        let Some(unresolved) = selector.unresolved() else {
            let resolved = self.resolve(selector).await?;
            return self.checkout(&resolved, dir, options).await;
        };
        match self.checkout(&unresolved, dir, options).await {
            Err(error @ GitError::Operation(_)) if unresolved.commit.is_none() => {
                self.resolve(selector).await?;
                Err(error)
            }
            outcome => outcome,
        }
    }

    /// Clones the tip of `branch` shallowly into `dir` and checks it out.
    async fn clone_branch(
        &self,
        session: &Session,
        dir: &Path,
        branch: &str,
    ) -> Result<(), GitError> {
        let dir = dir.display().to_string();
        let args = [
            "clone",
            "-q",
            "--template=",
            "--depth=1",
            "--no-tags",
            "--single-branch",
            "--branch",
            branch,
            "--",
            &self.url,
            &dir,
        ];
        self.run(session, None, &args).await.map(drop)
    }

    /// Initialises `dir` and fetches `resolved` shallowly, in full when a shallow fetch of a bare
    /// commit is refused. Returns what to check out: `FETCH_HEAD` or the commit.
    async fn fetch_resolved(
        &self,
        session: &Session,
        dir: &Path,
        resolved: &ResolvedRef,
    ) -> Result<String, GitError> {
        // No templates: the sample hooks and info files are never used in a checkout.
        self.run(
            session,
            None,
            &["init", "-q", "--template=", &dir.display().to_string()],
        )
        .await?;
        let shallow = self
            .run(
                session,
                Some(dir),
                &[
                    "fetch",
                    "-q",
                    "--depth=1",
                    "--no-tags",
                    "--",
                    &self.url,
                    &resolved.fetch,
                ],
            )
            .await;
        match (shallow, &resolved.commit) {
            (Ok(_), _) => Ok("FETCH_HEAD".to_owned()),
            (Err(error), Some(sha)) if resolved.fetch == *sha => {
                if matches!(error, GitError::Authentication(_) | GitError::Timeout(_)) {
                    return Err(error);
                }
                self.fetch_commit_in_full(session, dir, sha, resolved.fallback_branch.as_deref())
                    .await
            }
            (Err(error), _) => Err(error),
        }
    }

    async fn fetch_commit_in_full(
        &self,
        session: &Session,
        dir: &Path,
        sha: &str,
        branch: Option<&str>,
    ) -> Result<String, GitError> {
        let refspec = match branch {
            Some(branch) => format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"),
            None => "+refs/heads/*:refs/remotes/origin/*".to_owned(),
        };
        self.run(
            session,
            Some(dir),
            &["fetch", "-q", "--no-tags", "--", &self.url, &refspec],
        )
        .await?;
        self.rev_parse(session, dir, &format!("{sha}^{{commit}}"))
            .await
            .map_err(|_| {
                GitError::Operation(format!(
                    "commit '{sha}' not found in '{}'{}; check spec.ref.commit",
                    crate::remote::display_url(&self.url),
                    branch
                        .map(|b| format!(" on branch '{b}'"))
                        .unwrap_or_default()
                ))
            })
    }

    pub(crate) async fn rev_parse(
        &self,
        session: &Session,
        dir: &Path,
        rev: &str,
    ) -> Result<String, GitError> {
        Ok(self
            .run(
                session,
                Some(dir),
                &["rev-parse", "--verify", "-q", "--end-of-options", rev],
            )
            .await?
            .trim()
            .to_owned())
    }
}

/// Removes what an abandoned in-process checkout wrote, so `git` starts from scratch.
fn remove_partial_checkout(dir: &Path) -> Result<(), GitError> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(GitError::Operation(
            format!("removing a partial checkout failed: {error}"),
        )),
        _ => Ok(()),
    }
}

/// The tag checked out through `resolved`, when a tag ref was fetched: its annotated tag object
/// is the first field of `FETCH_HEAD` (the commit itself for a lightweight tag).
fn fetched_tag(
    dir: &Path,
    resolved: &ResolvedRef,
    fetched: &str,
    commit: &str,
) -> Result<Option<CheckedOutTag>, GitError> {
    if fetched != "FETCH_HEAD" || !resolved.fetch.starts_with("refs/tags/") {
        return Ok(None);
    }
    let fetch_head = std::fs::read_to_string(dir.join(".git").join("FETCH_HEAD"))
        .map_err(|e| GitError::Operation(format!("reading FETCH_HEAD failed: {e}")))?;
    let object = fetch_head
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Some(CheckedOutTag {
        name: resolved
            .name
            .clone()
            .unwrap_or_else(|| resolved.fetch.clone()),
        object: (object != commit).then_some(object),
    }))
}
