//! OpenPGP-signed commits: the key from a Flux signing-key Secret (`git.asc`, optional
//! `passphrase`) is imported into a temporary GnuPG home that lives for one commit.

use std::path::Path;
use std::process::Stdio;

use sluice_secrets::{SecretData, SecretError};
use tokio::process::Command;

use crate::{CommitAuthor, GitError, GitRemote};

/// An armored OpenPGP secret key and its passphrase.
#[derive(Clone)]
pub struct OpenPgpSigner {
    armored: Vec<u8>,
    passphrase: String,
}

impl OpenPgpSigner {
    /// Reads `git.asc` and the optional `passphrase` of a signing-key Secret.
    pub fn from_secret(secret: &SecretData) -> Result<Self, SecretError> {
        let armored = secret
            .bytes("git.asc")
            .ok_or_else(|| {
                secret.invalid("the OpenPGP signing key must be under the key 'git.asc'")
            })?
            .to_vec();
        Ok(Self {
            armored,
            passphrase: secret.text("passphrase")?.unwrap_or_default(),
        })
    }
}

impl GitRemote {
    /// [`GitRemote::commit_all`], signing the commit with `signer`.
    pub async fn commit_all_signed(
        &self,
        dir: &Path,
        author: &CommitAuthor,
        message: &str,
        signer: &OpenPgpSigner,
    ) -> Result<Option<String>, GitError> {
        let home = tempfile::Builder::new()
            .prefix("sluice-gpg-")
            .tempdir()
            .map_err(|e| GitError::Operation(format!("creating a GnuPG home failed: {e}")))?;
        let outcome = self
            .sign_in(home.path(), dir, author, message, signer)
            .await;
        // Best effort: the agent gpg started for this home exits with it.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(home.path())
            .args(["--kill", "gpg-agent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        outcome
    }

    async fn sign_in(
        &self,
        home: &Path,
        dir: &Path,
        author: &CommitAuthor,
        message: &str,
        signer: &OpenPgpSigner,
    ) -> Result<Option<String>, GitError> {
        let key = home.join("key.asc");
        let passphrase = home.join("passphrase");
        let wrapper = home.join("gpg.sh");
        write_private(&key, &signer.armored)?;
        write_private(&passphrase, signer.passphrase.as_bytes())?;
        let script = format!(
            "#!/bin/sh\nexec gpg --homedir '{}' --batch --no-tty --pinentry-mode loopback --passphrase-file '{}' \"$@\"\n",
            home.display(),
            passphrase.display()
        );
        write_private(&wrapper, script.as_bytes())?;
        set_mode(&wrapper, 0o700)?;
        self.gpg(&wrapper, &["--import".as_ref(), key.as_os_str()])
            .await?;
        let listing = self
            .gpg(
                &wrapper,
                &["--with-colons".as_ref(), "--list-secret-keys".as_ref()],
            )
            .await?;
        let fingerprint = listing
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
            .ok_or_else(|| {
                GitError::Operation("the signing key in 'git.asc' holds no secret key".to_owned())
            })?
            .to_owned();
        let config = [
            format!("gpg.program={}", wrapper.display()),
            format!("user.signingkey={fingerprint}"),
            "commit.gpgsign=true".to_owned(),
        ];
        self.commit_with_config(dir, author, message, &config).await
    }

    /// Runs the gpg wrapper with `args`; its stdout, or an error without the passphrase.
    async fn gpg(&self, wrapper: &Path, args: &[&std::ffi::OsStr]) -> Result<String, GitError> {
        let mut command = Command::new(wrapper);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = tokio::time::timeout(self.timeout, command.output())
            .await
            .map_err(|_| GitError::Timeout(self.timeout))?
            .map_err(|e| GitError::Operation(format!("running gpg failed: {e}; install gnupg")))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        Err(GitError::Operation(format!(
            "gpg failed with the signing key: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), GitError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .map_err(|e| GitError::Operation(format!("writing {} failed: {e}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), GitError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| GitError::Operation(format!("chmod {} failed: {e}", path.display())))?;
    }
    Ok(())
}
