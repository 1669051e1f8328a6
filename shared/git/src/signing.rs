//! Signed commits from a Flux signing-key Secret: OpenPGP (`git.asc`, optional `passphrase`),
//! imported into a temporary GnuPG home that lives for one commit, or SSH (`identity`, optional
//! `password`), decrypted in process and handed to git's `ssh-keygen` signing for one commit.

use std::path::Path;
use std::process::Stdio;

use sluice_secrets::{SecretData, SecretError};
use tokio::process::Command;
use zeroize::Zeroizing;

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

/// The most bcrypt rounds accepted for an encrypted SSH signing key (`ssh-keygen` uses 16).
const MAX_SSH_KEY_KDF_ROUNDS: u32 = 1024;

/// The smallest RSA modulus accepted for an SSH signing key, as Flux requires.
const MIN_RSA_BITS: usize = 2048;

/// Why `key` cannot sign commits (Flux takes ed25519, ECDSA and RSA ≥ 2048 bits), if it cannot.
fn unsupported_signing_key(key: &ssh_key::PublicKey) -> Option<String> {
    match key.algorithm() {
        ssh_key::Algorithm::Ed25519 | ssh_key::Algorithm::Ecdsa { .. } => None,
        ssh_key::Algorithm::Rsa { .. } => {
            let bits = key
                .key_data()
                .rsa()
                .and_then(|rsa| rsa.n.as_positive_bytes())
                .map_or(0, |modulus| {
                    modulus.len() * 8 - modulus.first().map_or(8, |b| b.leading_zeros() as usize)
                });
            (bits < MIN_RSA_BITS).then(|| format!("an RSA key of {bits} bits"))
        }
        other => Some(format!("a {} key", other.as_str())),
    }
}

/// An unencrypted OpenSSH private key to sign commits with.
#[derive(Clone)]
pub struct SshSigner {
    openssh: Zeroizing<String>,
}

impl SshSigner {
    /// Reads `identity` and the optional `password` of a signing-key Secret, decrypting the key.
    /// CPU-bound (bcrypt): call it from a blocking task.
    pub fn from_secret(secret: &SecretData) -> Result<Self, SecretError> {
        let identity = secret.bytes("identity").ok_or_else(|| {
            secret.invalid("the SSH signing key must be under the key 'identity'")
        })?;
        let key = ssh_key::PrivateKey::from_openssh(identity).map_err(|_| {
            secret.invalid("'identity' is not an OpenSSH private key (ssh-keygen -t ed25519)")
        })?;
        if let Some(problem) = unsupported_signing_key(key.public_key()) {
            return Err(secret.invalid(format!(
                "'identity' is {problem}; use an ed25519, ECDSA (P-256, P-384, P-521) or RSA key of at least {MIN_RSA_BITS} bits, as Flux does"
            )));
        }
        let key = if key.is_encrypted() {
            if let ssh_key::Kdf::Bcrypt { rounds, .. } = key.kdf()
                && *rounds > MAX_SSH_KEY_KDF_ROUNDS
            {
                return Err(secret.invalid(format!(
                    "'identity' is encrypted with {rounds} bcrypt rounds, more than the {MAX_SSH_KEY_KDF_ROUNDS} allowed"
                )));
            }
            let password = secret.text("password")?.unwrap_or_default();
            key.decrypt(password.as_bytes()).map_err(|_| {
                secret.invalid("cannot decrypt 'identity' with 'password'; check the password")
            })?
        } else {
            key
        };
        let openssh = key
            .to_openssh(ssh_key::LineEnding::LF)
            .map_err(|_| secret.invalid("cannot re-encode 'identity'"))?;
        Ok(Self { openssh })
    }
}

/// The key a commit is signed with.
#[derive(Clone)]
pub enum CommitSigner {
    OpenPgp(OpenPgpSigner),
    Ssh(SshSigner),
}

impl GitRemote {
    /// [`GitRemote::commit_all`], signing the commit with `signer`.
    pub async fn commit_all_signed(
        &self,
        dir: &Path,
        author: &CommitAuthor,
        message: &str,
        signer: &CommitSigner,
    ) -> Result<Option<String>, GitError> {
        match signer {
            CommitSigner::OpenPgp(signer) => {
                self.commit_all_gpg_signed(dir, author, message, signer)
                    .await
            }
            CommitSigner::Ssh(signer) => {
                self.commit_all_ssh_signed(dir, author, message, signer)
                    .await
            }
        }
    }

    async fn commit_all_ssh_signed(
        &self,
        dir: &Path,
        author: &CommitAuthor,
        message: &str,
        signer: &SshSigner,
    ) -> Result<Option<String>, GitError> {
        let home = tempfile::Builder::new()
            .prefix("sluice-ssh-sign-")
            .tempdir()
            .map_err(|e| GitError::Operation(format!("creating a key directory failed: {e}")))?;
        let key = home.path().join("signing-key");
        write_private(&key, signer.openssh.as_bytes())?;
        let config = [
            "gpg.format=ssh".to_owned(),
            format!("user.signingkey={}", key.display()),
            "commit.gpgsign=true".to_owned(),
        ];
        self.commit_with_config(dir, author, message, &config).await
    }

    async fn commit_all_gpg_signed(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 key made by `ssh-keygen -t ed25519 -N pass` (16 bcrypt rounds).
    fn encrypted_key() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "pass", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(path).unwrap()
    }

    /// `key` claiming `rounds` bcrypt rounds: the big-endian word closing its KDF options
    /// (after the magic, `aes256-ctr`, `bcrypt`, the options length and the 16-byte salt).
    fn with_kdf_rounds(key: &[u8], rounds: u32) -> Vec<u8> {
        use base64::Engine;
        let text = String::from_utf8(key.to_vec()).unwrap();
        let body: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let mut blob = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let at = 15 + 4 + 10 + 4 + 6 + 4 + 4 + 16;
        assert_eq!(&blob[at - 30..at - 24], b"bcrypt");
        blob[at..at + 4].copy_from_slice(&rounds.to_be_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(blob);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(70)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
        .into_bytes()
    }

    fn secret(identity: Vec<u8>, password: &str) -> SecretData {
        SecretData::from_entries(
            "apps",
            "signing",
            [
                ("identity".to_owned(), identity),
                ("password".to_owned(), password.as_bytes().to_vec()),
            ],
        )
    }

    #[test]
    fn ssh_signing_keys_are_decrypted_with_their_password() {
        let key = encrypted_key();
        let signer = SshSigner::from_secret(&secret(key.clone(), "pass")).unwrap();
        assert!(
            signer
                .openssh
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        let reparsed = ssh_key::PrivateKey::from_openssh(signer.openssh.as_bytes()).unwrap();
        assert!(!reparsed.is_encrypted());

        let wrong = SshSigner::from_secret(&secret(key, "not-the-password"))
            .err()
            .unwrap()
            .to_string();
        assert!(wrong.contains("cannot decrypt 'identity'"), "{wrong}");
        assert!(!wrong.contains("not-the-password"), "{wrong}");
    }

    #[test]
    fn ssh_signing_keys_with_costly_kdf_or_garbage_are_refused() {
        let costly =
            SshSigner::from_secret(&secret(with_kdf_rounds(&encrypted_key(), 2000), "pass"))
                .err()
                .unwrap()
                .to_string();
        assert!(costly.contains("2000 bcrypt rounds"), "{costly}");
        let garbage = SshSigner::from_secret(&secret(b"not a key".to_vec(), ""))
            .err()
            .unwrap()
            .to_string();
        assert!(garbage.contains("not an OpenSSH private key"), "{garbage}");
    }

    #[test]
    fn ssh_signing_keys_of_types_flux_refuses_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let generate = |name: &str, args: &[&str]| {
            let path = dir.path().join(name);
            let status = std::process::Command::new("ssh-keygen")
                .args(["-q", "-N", ""])
                .args(args)
                .arg("-f")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
            std::fs::read(path).unwrap()
        };
        let small = generate("rsa1024", &["-t", "rsa", "-b", "1024"]);
        let refused = SshSigner::from_secret(&secret(small, ""))
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("an RSA key of 1024 bits"), "{refused}");
        for (name, args) in [
            ("rsa2048", &["-t", "rsa", "-b", "2048"][..]),
            ("ecdsa384", &["-t", "ecdsa", "-b", "384"][..]),
        ] {
            let key = generate(name, args);
            assert!(SshSigner::from_secret(&secret(key, "")).is_ok(), "{name}");
        }
    }
}
