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
        redactions.extend(url_secrets(&self.url));
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

    /// Removes the passphrase from the private key copy, so ssh needs no prompt. The passphrase
    /// reaches `ssh-keygen` through an askpass script reading a private file, never its argv,
    /// and the key's KDF (whose rounds the key's author chose) runs within the remote's timeout.
    pub(crate) async fn unlock_key(&self, path: &Path) -> Result<(), GitError> {
        let password = self.credentials.ssh_password.clone().unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new("."));
        let passphrase = write_private(dir, "key-passphrase", password.as_bytes())?;
        let askpass = write_private(
            dir,
            "key-askpass",
            format!(
                "#!/bin/sh\nexec cat '{}'\n",
                passphrase.display().to_string().replace('\'', "'\\''")
            )
            .as_bytes(),
        )?;
        set_executable(&askpass)?;
        let running = Command::new("ssh-keygen")
            .args(["-p", "-N", "", "-q", "-f"])
            .arg(path)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(self.timeout, running)
            .await
            .map_err(|_| GitError::Timeout(self.timeout))?
            .map_err(|e| {
                GitError::Operation(format!(
                    "running ssh-keygen failed: {e}; install openssh-client"
                ))
            })?;
        let _ = std::fs::remove_file(&passphrase);
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

/// The `user:password@` part of a URL's authority, without the `@`.
fn userinfo(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..].find('/').map_or(url.len(), |end| start + end);
    let at = url[start..authority_end].rfind('@')?;
    Some((start, &url[start..start + at]))
}

/// `url` without its userinfo, for messages: `https://token@host/x` shows as `https://host/x`.
pub fn display_url(url: &str) -> String {
    match userinfo(url) {
        Some((start, info)) => format!("{}{}", &url[..start], &url[start + info.len() + 1..]),
        None => url.to_owned(),
    }
}

/// What of a URL's userinfo to redact from git's output: the password, and over HTTP(S) a
/// username (which is often a token); a short SSH user name such as `git` is left alone.
fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, info)) = userinfo(url) else {
        return Vec::new();
    };
    let mut secrets = Vec::new();
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    if !password.is_empty() {
        secrets.extend([info.to_owned(), password.to_owned()]);
    }
    if url.starts_with("http") && user.len() >= 6 {
        secrets.push(user.to_owned());
    }
    secrets
}

/// Makes a file written by [`write_private`] executable by its owner only.
fn set_executable(path: &Path) -> Result<(), GitError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        GitError::Operation(format!(
            "preparing the SSH key in a temporary directory failed: {e}"
        ))
    })
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

    const PASSPHRASE: &str = "kdf-pass-7731-unique";

    /// An ed25519 key encrypted with `passphrase` and `rounds` bcrypt KDF rounds, by ssh-keygen.
    fn encrypted_key(dir: &Path, passphrase: &str, rounds: u32) -> PathBuf {
        let path = dir.join("key");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", "", "-N", passphrase, "-a"])
            .arg(rounds.to_string())
            .arg("-f")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(dir.join("key.pub")).unwrap();
        path
    }

    fn remote(password: &str, timeout: Duration) -> GitRemote {
        GitRemote {
            url: "ssh://git@127.0.0.1/repo".to_owned(),
            credentials: GitCredentials {
                ssh_password: Some(password.to_owned()),
                ..GitCredentials::default()
            },
            proxy: None,
            timeout,
        }
    }

    fn decrypts_without_passphrase(path: &Path) -> bool {
        std::process::Command::new("ssh-keygen")
            .args(["-y", "-P", "", "-f"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Whether any process's command line holds `needle`.
    fn on_any_argv(needle: &str) -> bool {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
        })
    }

    #[test]
    fn urls_lose_their_userinfo_in_messages() {
        assert_eq!(
            display_url("https://user:tok3n@host:8443/org/repo"),
            "https://host:8443/org/repo"
        );
        assert_eq!(display_url("ssh://git@host/repo"), "ssh://host/repo");
        assert_eq!(display_url("https://host/a@b"), "https://host/a@b");
        assert_eq!(display_url("oci://u:p@registry/app"), "oci://registry/app");
        assert_eq!(
            url_secrets("https://user:tok3n@host/x"),
            ["user:tok3n", "tok3n"]
        );
        assert_eq!(
            url_secrets("https://ghp_token1234@host/x"),
            ["ghp_token1234"]
        );
        assert!(url_secrets("ssh://git@host/x").is_empty());
    }

    #[tokio::test]
    async fn the_passphrase_never_appears_on_a_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let key = encrypted_key(dir.path(), PASSPHRASE, 64);
        let right = remote(PASSPHRASE, Duration::from_secs(60));
        let unlocking = right.unlock_key(&key);
        tokio::pin!(unlocking);
        let mut seen = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut unlocking => break outcome,
                () = tokio::time::sleep(Duration::from_millis(2)) => seen |= on_any_argv(PASSPHRASE),
            }
        };
        outcome.unwrap();
        assert!(!seen, "the passphrase was visible in /proc/*/cmdline");
        assert!(decrypts_without_passphrase(&key));
        let wrong = remote("wrong", Duration::from_secs(60));
        let other = tempfile::tempdir().unwrap();
        let key = encrypted_key(other.path(), "other-pass", 16);
        let error = wrong.unlock_key(&key).await.unwrap_err();
        assert!(error.to_string().contains("does not decrypt"), "{error}");
    }

    #[tokio::test]
    async fn decrypting_a_key_is_bounded_by_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let key = encrypted_key(dir.path(), "slow-pass", 256);
        let hurried = remote("slow-pass", Duration::from_millis(5));
        let error = hurried.unlock_key(&key).await.unwrap_err();
        assert!(matches!(error, GitError::Timeout(_)), "{error}");
    }
}
