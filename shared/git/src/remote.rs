//! A remote repository and the sandboxed `git` invocations against it: environment-scoped
//! config, 0600 credential files in a per-operation directory, output redacted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kube::ResourceExt;
use sluice_api::duration::parse_duration;
use sluice_api::source::GitRepository;
use sluice_secrets::{ProxySettings, SecretError, read_secret, redact};
use tokio::process::Command;

use crate::error::classify;
use crate::{GitCredentials, GitError};

/// A remote repository with its access settings.
#[derive(Clone)]
pub struct GitRemote {
    pub url: String,
    pub credentials: GitCredentials,
    pub proxy: Option<ProxySettings>,
    pub timeout: Duration,
}

/// Git operations of a GitRepository without `spec.timeout` time out after this, as in Flux.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl GitRemote {
    /// The remote of a GitRepository as Flux's controllers read it: its URL, the credentials of
    /// `spec.secretRef`, the proxy of `spec.proxySecretRef` and `spec.timeout`.
    pub async fn for_repository(
        client: &kube::Client,
        repository: &GitRepository,
    ) -> Result<Self, SecretError> {
        let spec = &repository.spec;
        let namespace = repository.namespace().unwrap_or_default();
        let credentials = match &spec.secret_ref {
            Some(reference) => {
                let secret = read_secret(client, &namespace, &reference.name).await?;
                GitCredentials::from_secret(&secret, spec.url.starts_with("ssh://"))?
            }
            None => GitCredentials::default(),
        };
        let proxy = match &spec.proxy_secret_ref {
            Some(reference) => {
                let secret = read_secret(client, &namespace, &reference.name).await?;
                Some(ProxySettings::from_secret(&secret)?)
            }
            None => None,
        };
        let timeout = spec
            .timeout
            .as_deref()
            .and_then(|timeout| parse_duration(timeout).ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        Ok(Self {
            url: spec.url.clone(),
            credentials,
            proxy,
            timeout,
        })
    }
}

/// Prepared environment for one operation; files are removed on drop.
pub(crate) struct Session {
    /// Holds the key and certificate files; deleted when the session drops.
    _dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    redactions: Vec<String>,
}

impl GitRemote {
    fn is_ssh(&self) -> bool {
        self.url.starts_with("ssh://")
    }

    /// `-c protocol.version=…` for listing refs. Over HTTP(S), v0 costs the server one
    /// upload-pack run (the GET advertisement lists every ref) where v2 costs two (a GET for
    /// capabilities, a POST for `ls-refs`); v2 filters refs by prefix on the server, so it sends
    /// less for repositories with very many refs, but Flux (go-git) lists them all with v0 too.
    /// Over SSH both take one connection, so v2 (filtered) is kept there.
    pub(crate) fn list_protocol(&self) -> &'static str {
        if self.is_ssh() {
            "protocol.version=2"
        } else {
            "protocol.version=0"
        }
    }

    /// `scheme://host[:port]`, the scope of the authorization header.
    fn origin(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let authority = rest.split('/').next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or(authority);
        format!("{scheme}://{host}/")
    }

    pub(crate) async fn session(&self) -> Result<Session, GitError> {
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
            // Checkouts are short-lived temporary directories: no background maintenance (an
            // extra process per fetch), no fsync, and one pack per fetch instead of loose objects.
            ("maintenance.auto".into(), "false".into()),
            ("gc.auto".into(), "0".into()),
            ("core.fsync".into(), "none".into()),
            ("fetch.unpackLimit".into(), "1".into()),
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

    pub(crate) async fn run(
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
