//! Shallow checkouts of a resolved reference, optionally sparse and with submodules.

use std::path::Path;

use crate::remote::Session;
use crate::{GitError, GitRemote, ResolvedRef};

/// A checked-out commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOut {
    pub commit: String,
    pub revision: String,
    /// First line of the commit message.
    pub subject: String,
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

impl GitRemote {
    /// Shallow-fetches `resolved` into `dir` and checks it out (optionally sparse, with submodules).
    pub async fn checkout(
        &self,
        resolved: &ResolvedRef,
        dir: &Path,
        sparse: &[String],
        submodules: bool,
    ) -> Result<CheckedOut, GitError> {
        let session = self.session().await?;
        let cwd = Some(dir);
        let (commit, fetched_tag) = self.fetch_resolved(&session, dir, resolved).await?;
        if !sparse.is_empty() {
            let mut args = vec!["sparse-checkout", "set", "--cone", "--"];
            args.extend(sparse.iter().map(String::as_str));
            self.run(&session, cwd, &args).await?;
        }
        self.run(&session, cwd, &["checkout", "-q", "--detach", &commit])
            .await?;
        for directory in sparse {
            if !dir.join(directory.trim_matches('/')).is_dir() {
                return Err(GitError::Operation(format!(
                    "sparse checkout directory '{directory}' does not exist at commit {commit}; fix spec.sparseCheckout"
                )));
            }
        }
        if submodules {
            self.run(
                &session,
                cwd,
                &["submodule", "update", "--init", "--recursive", "--depth=1"],
            )
            .await?;
        }
        let subject = self
            .run(&session, cwd, &["log", "-1", "--format=%s", &commit])
            .await?
            .trim()
            .to_owned();
        let tag = if fetched_tag {
            let object = self.rev_parse(&session, dir, "FETCH_HEAD").await?;
            Some(CheckedOutTag {
                name: resolved
                    .name
                    .clone()
                    .unwrap_or_else(|| resolved.fetch.clone()),
                object: (object != commit).then_some(object),
            })
        } else {
            None
        };
        Ok(CheckedOut {
            revision: resolved.revision(&commit),
            commit,
            subject,
            tag,
        })
    }

    /// Initialises `dir` with `origin` and fetches `resolved` shallowly, in full when a shallow
    /// fetch of a bare commit is refused. Returns the commit and whether a tag was fetched.
    async fn fetch_resolved(
        &self,
        session: &Session,
        dir: &Path,
        resolved: &ResolvedRef,
    ) -> Result<(String, bool), GitError> {
        let cwd = Some(dir);
        self.run(session, None, &["init", "-q", &dir.display().to_string()])
            .await?;
        self.run(session, cwd, &["remote", "add", "origin", &self.url])
            .await?;
        let shallow = self
            .run(
                session,
                cwd,
                &[
                    "fetch",
                    "-q",
                    "--depth=1",
                    "--no-tags",
                    "origin",
                    &resolved.fetch,
                ],
            )
            .await;
        let fetched_tag = shallow.is_ok() && resolved.fetch.starts_with("refs/tags/");
        let commit = match (shallow, &resolved.commit) {
            (Ok(_), _) => self.rev_parse(session, dir, "FETCH_HEAD^{commit}").await?,
            (Err(error), Some(sha)) if resolved.fetch == *sha => {
                if matches!(error, GitError::Authentication(_) | GitError::Timeout(_)) {
                    return Err(error);
                }
                self.fetch_commit_in_full(session, dir, sha, resolved.fallback_branch.as_deref())
                    .await?
            }
            (Err(error), _) => return Err(error),
        };
        Ok((commit, fetched_tag))
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
            &["fetch", "-q", "--no-tags", "origin", &refspec],
        )
        .await?;
        self.rev_parse(session, dir, &format!("{sha}^{{commit}}"))
            .await
            .map_err(|_| {
                GitError::Operation(format!(
                    "commit '{sha}' not found in '{}'{}; check spec.ref.commit",
                    self.url,
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
            .run(session, Some(dir), &["rev-parse", "--verify", "-q", rev])
            .await?
            .trim()
            .to_owned())
    }
}
