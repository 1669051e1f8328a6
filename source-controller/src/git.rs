//! Git access through the `git` CLI (smart HTTP(S) and SSH): ref resolution with one
//! `ls-remote` round trip and shallow checkouts, with credentials from a Flux Secret.
//!
//! Credentials travel through environment-scoped git config and 0600 files in a per-operation
//! temporary directory, never on the command line, and are redacted from any output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use nodejs_semver::{Range, Version};
use sluice_api::source::GitRepositoryRef;
use tokio::process::Command;

use crate::secrets::{ProxySettings, SecretData, SecretError, redact};

/// The branch checked out when `spec.ref` is unset.
pub const DEFAULT_BRANCH: &str = "master";

/// A Git operation failed; each variant maps to a Flux condition reason.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0}")]
    Authentication(String),
    #[error("remote repository '{0}' is empty; push a commit to it")]
    EmptyRepository(String),
    #[error("{0}")]
    Operation(String),
    #[error(
        "git operation timed out after {0:?}; raise spec.timeout or check the remote is reachable"
    )]
    Timeout(Duration),
    #[error(transparent)]
    Secret(#[from] SecretError),
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
    /// The Flux revision for `commit`: `<name>@sha1:<commit>` or `sha1:<commit>`.
    pub fn revision(&self, commit: &str) -> String {
        match &self.name {
            Some(name) => format!("{name}@sha1:{commit}"),
            None => format!("sha1:{commit}"),
        }
    }
}

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

/// Credentials from a GitRepository `secretRef`.
#[derive(Clone, Default)]
pub struct GitCredentials {
    basic: Option<(String, String)>,
    bearer: Option<String>,
    ca: Option<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    ssh_identity: Option<Vec<u8>>,
    ssh_password: Option<String>,
    known_hosts: Option<Vec<u8>>,
}

impl GitCredentials {
    /// Reads the keys Flux supports: `username`/`password`, `bearerToken`, `ca.crt` (or legacy
    /// `caFile`), `tls.crt`/`tls.key`, `identity`, `known_hosts` and `password` for SSH keys.
    pub fn from_secret(secret: &SecretData, ssh: bool) -> Result<Self, SecretError> {
        if secret.bytes("githubAppID").is_some() {
            return Err(secret.invalid(
                "GitHub App keys need spec.provider 'github', which this controller does not support; use a token or deploy key",
            ));
        }
        let mut credentials = Self {
            ca: secret
                .bytes("ca.crt")
                .or_else(|| secret.bytes("caFile"))
                .map(<[u8]>::to_vec),
            ..Self::default()
        };
        match (secret.bytes("tls.crt"), secret.bytes("tls.key")) {
            (Some(cert), Some(key)) => {
                credentials.client_cert = Some((cert.to_vec(), key.to_vec()))
            }
            (None, None) => {}
            _ => {
                return Err(secret.invalid(
                    "'tls.crt' and 'tls.key' must be set together for a client certificate",
                ));
            }
        }
        if ssh {
            credentials.ssh_identity = secret.bytes("identity").map(<[u8]>::to_vec);
            credentials.known_hosts = secret.bytes("known_hosts").map(<[u8]>::to_vec);
            credentials.ssh_password = secret.text("password")?.filter(|p| !p.is_empty());
            if credentials.ssh_identity.is_none() || credentials.known_hosts.is_none() {
                return Err(secret.invalid(
                    "SSH access needs both 'identity' (private key) and 'known_hosts' keys",
                ));
            }
        } else {
            let username = secret.text("username")?.unwrap_or_default();
            let password = secret.text("password")?.unwrap_or_default();
            if !username.is_empty() || !password.is_empty() {
                credentials.basic = Some((username, password));
            }
            credentials.bearer = secret.text("bearerToken")?.filter(|t| !t.is_empty());
            if credentials.basic.is_some() && credentials.bearer.is_some() {
                return Err(
                    secret.invalid("set either 'username'/'password' or 'bearerToken', not both")
                );
            }
        }
        Ok(credentials)
    }

    fn authorization_header(&self) -> Option<String> {
        if let Some(token) = &self.bearer {
            return Some(format!("Authorization: Bearer {token}"));
        }
        self.basic.as_ref().map(|(username, password)| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            format!("Authorization: Basic {encoded}")
        })
    }

    fn redactions(&self) -> Vec<String> {
        let mut values = Vec::new();
        if let Some((username, password)) = &self.basic {
            values.push(password.clone());
            values.push(
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
            );
        }
        values.extend(self.bearer.clone());
        values.extend(self.ssh_password.clone());
        values
    }
}

/// A remote repository with its access settings.
#[derive(Clone)]
pub struct GitRemote {
    pub url: String,
    pub credentials: GitCredentials,
    pub proxy: Option<ProxySettings>,
    pub timeout: Duration,
}

/// Prepared environment for one operation; files are removed on drop.
struct Session {
    /// Holds the key and certificate files; deleted when the session drops.
    _dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    redactions: Vec<String>,
}

impl GitRemote {
    fn is_ssh(&self) -> bool {
        self.url.starts_with("ssh://")
    }

    /// `scheme://host[:port]`, the scope of the authorization header.
    fn origin(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let authority = rest.split('/').next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or(authority);
        format!("{scheme}://{host}/")
    }

    async fn session(&self) -> Result<Session, GitError> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-git-")
            .tempdir()
            .map_err(|e| {
                GitError::Operation(format!("creating a temporary directory failed: {e}"))
            })?;
        let mut config: Vec<(String, String)> = vec![
            ("protocol.version".into(), "2".into()),
            ("credential.helper".into(), String::new()),
            ("core.askPass".into(), String::new()),
            ("advice.detachedHead".into(), "false".into()),
            ("init.defaultBranch".into(), "main".into()),
        ];
        let credentials = &self.credentials;
        if let Some(header) = credentials.authorization_header() {
            config.push((format!("http.{}.extraHeader", self.origin()), header));
        }
        if let Some(ca) = &credentials.ca {
            let path = write_private(dir.path(), "ca.crt", ca)?;
            config.push(("http.sslCAInfo".into(), path.display().to_string()));
        }
        if let Some((cert, key)) = &credentials.client_cert {
            let cert = write_private(dir.path(), "tls.crt", cert)?;
            let key = write_private(dir.path(), "tls.key", key)?;
            config.push(("http.sslCert".into(), cert.display().to_string()));
            config.push(("http.sslKey".into(), key.display().to_string()));
        }
        let mut redactions = credentials.redactions();
        if let Some(proxy) = &self.proxy {
            config.push(("http.proxy".into(), proxy.url.clone()));
            redactions.extend(proxy.secrets.clone());
        }
        let mut env = vec![
            ("HOME".to_owned(), dir.path().display().to_string()),
            ("GIT_CONFIG_NOSYSTEM".to_owned(), "1".to_owned()),
            ("GIT_CONFIG_GLOBAL".to_owned(), "/dev/null".to_owned()),
            ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
            ("GIT_ASKPASS".to_owned(), "/bin/false".to_owned()),
            ("SSH_ASKPASS".to_owned(), "/bin/false".to_owned()),
            ("GIT_CONFIG_COUNT".to_owned(), config.len().to_string()),
        ];
        for (index, (key, value)) in config.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{index}"), key));
            env.push((format!("GIT_CONFIG_VALUE_{index}"), value));
        }
        if self.is_ssh() {
            env.push((
                "GIT_SSH_COMMAND".into(),
                self.ssh_command(dir.path()).await?,
            ));
        }
        Ok(Session {
            _dir: dir,
            env,
            redactions,
        })
    }

    async fn ssh_command(&self, dir: &Path) -> Result<String, GitError> {
        let credentials = &self.credentials;
        let known_hosts = write_private(
            dir,
            "known_hosts",
            credentials.known_hosts.as_deref().unwrap_or_default(),
        )?;
        let mut command = format!(
            "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o ConnectTimeout={}",
            known_hosts.display(),
            self.timeout.as_secs().max(1)
        );
        if let Some(identity) = &credentials.ssh_identity {
            let mut key = identity.clone();
            if !key.ends_with(b"\n") {
                key.push(b'\n');
            }
            let path = write_private(dir, "identity", &key)?;
            self.unlock_key(&path).await?;
            command.push_str(&format!(" -o IdentitiesOnly=yes -i {}", path.display()));
        }
        Ok(command)
    }

    /// Removes the passphrase from the private key copy, so ssh needs no prompt.
    async fn unlock_key(&self, path: &Path) -> Result<(), GitError> {
        let password = self.credentials.ssh_password.clone().unwrap_or_default();
        let output = Command::new("ssh-keygen")
            .arg("-p")
            .arg("-P")
            .arg(&password)
            .args(["-N", "", "-q", "-f"])
            .arg(path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                GitError::Operation(format!(
                    "running ssh-keygen failed: {e}; install openssh-client"
                ))
            })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("incorrect passphrase") || stderr.contains("passphrase") {
            let hint = if password.is_empty() {
                "the SSH private key is encrypted; add its passphrase to the secret as 'password'"
            } else {
                "the 'password' in the secret does not decrypt the SSH private key"
            };
            return Err(GitError::Authentication(hint.to_owned()));
        }
        // Keys without passphrase support in ssh-keygen -p (none known) are used unchanged.
        if password.is_empty() {
            return Ok(());
        }
        Err(GitError::Authentication(format!(
            "cannot decrypt the SSH private key: {}",
            redact(stderr.trim(), &[password])
        )))
    }

    async fn run(
        &self,
        session: &Session,
        cwd: Option<&Path>,
        args: &[&str],
    ) -> Result<String, GitError> {
        let mut command = Command::new("git");
        command
            .args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .envs(session.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let output = tokio::time::timeout(self.timeout, command.output())
            .await
            .map_err(|_| GitError::Timeout(self.timeout))?
            .map_err(|e| GitError::Operation(format!("running git failed: {e}; install git")))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = redact(
            String::from_utf8_lossy(&output.stderr).trim(),
            &session.redactions,
        );
        Err(classify(&stderr))
    }

    /// Lists remote refs (`ls-remote`) matching `patterns`, with annotated tags peeled.
    async fn ls_remote(
        &self,
        session: &Session,
        tags_only: bool,
        patterns: &[&str],
    ) -> Result<BTreeMap<String, String>, GitError> {
        let mut args = vec!["ls-remote"];
        if tags_only {
            args.push("--tags");
        }
        args.extend(["--", self.url.as_str()]);
        args.extend_from_slice(patterns);
        let output = self.run(session, None, &args).await?;
        let mut refs = BTreeMap::new();
        let mut peeled = BTreeMap::new();
        for line in output.lines() {
            let Some((sha, name)) = line.split_once('\t') else {
                continue;
            };
            match name.strip_suffix("^{}") {
                Some(base) => {
                    peeled.insert(base.to_owned(), sha.to_owned());
                }
                None => {
                    refs.insert(name.to_owned(), sha.to_owned());
                }
            }
        }
        for (name, sha) in peeled {
            refs.insert(name, sha);
        }
        Ok(refs)
    }

    /// Resolves `selector` with at most one `ls-remote` (none for a commit).
    pub async fn resolve(&self, selector: &RefSelector) -> Result<ResolvedRef, GitError> {
        let (full_name, revision_name) = match selector {
            RefSelector::Commit { sha, branch } => {
                return Ok(ResolvedRef {
                    fetch: sha.clone(),
                    name: branch.clone(),
                    commit: Some(sha.clone()),
                    fallback_branch: branch.clone(),
                });
            }
            RefSelector::Semver(range) => return self.resolve_semver(range).await,
            RefSelector::Branch(branch) => (format!("refs/heads/{branch}"), branch.clone()),
            RefSelector::Tag(tag) => (format!("refs/tags/{tag}"), tag.clone()),
            RefSelector::Name(name) => (name.clone(), name.clone()),
        };
        let session = self.session().await?;
        let refs = self
            .ls_remote(&session, false, &[full_name.as_str()])
            .await?;
        match refs.get(&full_name) {
            Some(sha) => Ok(ResolvedRef {
                fetch: full_name,
                name: Some(revision_name),
                commit: Some(sha.clone()),
                fallback_branch: None,
            }),
            None => {
                self.ensure_not_empty(&session).await?;
                Err(GitError::Operation(format!(
                    "reference '{full_name}' not found in '{}'; check spec.ref",
                    self.url
                )))
            }
        }
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
            return Err(GitError::EmptyRepository(self.url.clone()));
        }
        Ok(())
    }

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
        self.run(&session, None, &["init", "-q", &dir.display().to_string()])
            .await?;
        self.run(&session, cwd, &["remote", "add", "origin", &self.url])
            .await?;
        let shallow = self
            .run(
                &session,
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
            (Ok(_), _) => self.rev_parse(&session, dir, "FETCH_HEAD^{commit}").await?,
            (Err(error), Some(sha)) if resolved.fetch == *sha => {
                if matches!(error, GitError::Authentication(_) | GitError::Timeout(_)) {
                    return Err(error);
                }
                self.fetch_commit_in_full(&session, dir, sha, resolved.fallback_branch.as_deref())
                    .await?
            }
            (Err(error), _) => return Err(error),
        };
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

    async fn rev_parse(
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

/// The highest tag satisfying a Flux SemVer range; `v` prefixes are allowed on tags.
pub fn highest_matching_tag(
    range: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(String, String), GitError> {
    let parsed = Range::parse(range).map_err(|e| {
        GitError::Operation(format!(
            "invalid spec.ref.semver '{range}': {e}; use a range such as '>=1.0.0 <2.0.0'"
        ))
    })?;
    tags.iter()
        .filter_map(|(name, sha)| {
            let tag = name.strip_prefix("refs/tags/")?;
            let version = parse_tag_version(tag)?;
            parsed
                .satisfies(&version)
                .then(|| (version, tag.to_owned(), sha.clone()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, tag, sha)| (tag, sha))
        .ok_or_else(|| {
            GitError::Operation(format!(
                "no tag matches spec.ref.semver '{range}'; push a matching tag or widen the range"
            ))
        })
}

/// Parses a tag as a version, accepting a leading `v`.
pub fn parse_tag_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

fn classify(stderr: &str) -> GitError {
    let lower = stderr.to_lowercase();
    let authentication = [
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied",
        "host key verification failed",
        "http 401",
        "http 403",
        "returned error: 401",
        "returned error: 403",
        "ssl certificate problem",
        "server certificate verification failed",
        "certificate verify failed",
    ];
    if authentication.iter().any(|needle| lower.contains(needle)) {
        return GitError::Authentication(format!(
            "{stderr}; check the credentials in spec.secretRef"
        ));
    }
    GitError::Operation(stderr.to_owned())
}

fn write_private(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, GitError> {
    use std::io::Write;
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| {
        GitError::Operation(format!(
            "writing {name} to a temporary directory failed: {e}"
        ))
    })?;
    file.write_all(contents).map_err(|e| {
        GitError::Operation(format!(
            "writing {name} to a temporary directory failed: {e}"
        ))
    })?;
    Ok(path)
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
    fn semver_picks_highest_match_and_skips_prereleases() {
        let tags: BTreeMap<String, String> = [
            ("refs/tags/v1.0.0", "a"),
            ("refs/tags/v1.2.0", "b"),
            ("refs/tags/1.3.0-rc.1", "c"),
            ("refs/tags/v2.0.0", "d"),
            ("refs/tags/not-a-version", "e"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            highest_matching_tag(">=1.0.0 <2.0.0", &tags).unwrap(),
            ("v1.2.0".to_owned(), "b".to_owned())
        );
        assert_eq!(highest_matching_tag("^1 || ^2", &tags).unwrap().0, "v2.0.0");
        assert_eq!(highest_matching_tag("1.0.x", &tags).unwrap().0, "v1.0.0");
        assert!(highest_matching_tag(">=3.0.0", &tags).is_err());
        assert!(highest_matching_tag("not a range!", &tags).is_err());
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

    #[test]
    fn classification() {
        assert!(matches!(
            classify("fatal: Authentication failed for 'x'"),
            GitError::Authentication(_)
        ));
        assert!(matches!(
            classify("git@x: Permission denied (publickey)."),
            GitError::Authentication(_)
        ));
        assert!(matches!(
            classify("fatal: couldn't find remote ref x"),
            GitError::Operation(_)
        ));
    }
}
