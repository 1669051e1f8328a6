//! Committing changes in a checkout as an author, and pushing them to branches or refspecs with
//! push options: what image-automation needs to write updates back.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{GitError, GitRemote};

/// The name and email a commit is recorded under, as author and committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitAuthor {
    pub name: String,
    pub email: String,
}

/// Where a push goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTarget {
    /// The checked-out commit pushed to `refs/heads/<branch>`.
    Branch(String),
    /// A refspec as given, e.g. `refs/heads/main:refs/heads/auto`.
    Refspec(String),
}

impl PushTarget {
    fn refspec(&self) -> String {
        match self {
            Self::Branch(branch) => format!("HEAD:refs/heads/{branch}"),
            Self::Refspec(refspec) => refspec.clone(),
        }
    }
}

impl GitRemote {
    /// Stages every change in the checkout `dir` and commits it as `author`; `None` when
    /// nothing changed, otherwise the new commit SHA.
    pub async fn commit_all(
        &self,
        dir: &Path,
        author: &CommitAuthor,
        message: &str,
    ) -> Result<Option<String>, GitError> {
        self.commit_with_config(dir, author, message, &[]).await
    }

    /// [`GitRemote::commit_all`] with extra `-c key=value` settings for the commit (signing).
    pub(crate) async fn commit_with_config(
        &self,
        dir: &Path,
        author: &CommitAuthor,
        message: &str,
        config: &[String],
    ) -> Result<Option<String>, GitError> {
        if author.name.trim().is_empty() || author.email.trim().is_empty() {
            return Err(GitError::Operation(
                "a commit needs an author name and email; set both".to_owned(),
            ));
        }
        let session = self.session().await?;
        let cwd = Some(dir);
        self.run(&session, cwd, &["add", "--all"]).await?;
        let staged = self
            .run(&session, cwd, &["diff", "--cached", "--name-only"])
            .await?;
        if staged.trim().is_empty() {
            return Ok(None);
        }
        let name = format!("user.name={}", author.name);
        let email = format!("user.email={}", author.email);
        let mut args = vec!["-c", name.as_str(), "-c", email.as_str()];
        for setting in config {
            args.extend(["-c", setting.as_str()]);
        }
        args.extend(["commit", "-q", "--no-verify", "-m", message]);
        self.run(&session, cwd, &args).await?;
        self.rev_parse(&session, dir, "HEAD").await.map(Some)
    }

    /// Points the local branch `branch` of the checkout `dir` at HEAD and checks it out, so
    /// refspecs naming `refs/heads/<branch>` push the new commit.
    pub async fn switch_to_branch(&self, dir: &Path, branch: &str) -> Result<(), GitError> {
        let session = self.session().await?;
        self.run(&session, Some(dir), &["checkout", "-q", "-B", branch])
            .await
            .map(drop)
    }

    /// Pushes from the checkout `dir` to every target in one `git push`, passing `options` as
    /// push options (`-o key=value`, or `-o key` for an empty value).
    pub async fn push(
        &self,
        dir: &Path,
        targets: &[PushTarget],
        options: &BTreeMap<String, String>,
    ) -> Result<(), GitError> {
        if targets.is_empty() {
            return Err(GitError::Operation(
                "nothing to push to; name a branch or a refspec".to_owned(),
            ));
        }
        let session = self.session().await?;
        let options: Vec<String> = options
            .iter()
            .map(|(key, value)| {
                if value.is_empty() {
                    key.clone()
                } else {
                    format!("{key}={value}")
                }
            })
            .collect();
        let refspecs: Vec<String> = targets.iter().map(PushTarget::refspec).collect();
        let mut args = vec!["push", "-q"];
        for option in &options {
            args.extend(["-o", option.as_str()]);
        }
        args.extend(["--", self.url.as_str()]);
        args.extend(refspecs.iter().map(String::as_str));
        match self.run(&session, Some(dir), &args).await {
            Err(GitError::Operation(message)) if message.contains("[rejected]") => {
                Err(GitError::Operation(format!(
                    "{message}; the remote branch has commits this checkout lacks: check out again and retry"
                )))
            }
            outcome => outcome.map(drop),
        }
    }
}
