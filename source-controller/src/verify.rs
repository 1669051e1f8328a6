//! Commit and tag signature verification with `git verify-commit`/`git verify-tag` against the
//! trusted PGP (`gpg`) and SSH (`ssh-keygen`) public keys of a Flux `verify.secretRef` Secret.
//!
//! Keys live in a per-verification 0700 directory (a private GNUPGHOME and an allowed-signers
//! file) that is removed on drop; no key material appears in errors.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use tokio::process::Command;

use sluice_secrets::SecretData;

/// Secret keys with this suffix hold SSH public keys (authorized_keys format); others PGP keys.
const SSH_KEY_SUFFIX: &str = ".sshpub";
/// Upper bound for one `gpg` or `git` invocation.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A signature could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The Git object carries no signature.
    #[error("{0}")]
    Unsigned(String),
    /// The signature or the trusted keys are invalid, or no trusted key made the signature.
    #[error("{0}")]
    Invalid(String),
    /// Verification could not run (missing tools, temporary files).
    #[error("{0}")]
    Unavailable(String),
}

/// Trusted public keys from a Secret: armored PGP keys and SSH allowed-signers lines.
pub struct TrustedKeys {
    pgp: Vec<(String, Vec<u8>)>,
    ssh_signers: Vec<String>,
}

impl TrustedKeys {
    /// Keys ending in `.sshpub` are SSH public keys; every other key is an armored PGP key ring.
    pub fn from_secret(secret: &SecretData) -> Result<Self, VerifyError> {
        let mut keys = Self {
            pgp: Vec::new(),
            ssh_signers: Vec::new(),
        };
        for (name, value) in secret.entries() {
            if name.ends_with(SSH_KEY_SUFFIX) {
                keys.ssh_signers.extend(allowed_signers(name, value)?);
            } else {
                keys.pgp.push((name.to_owned(), value.to_vec()));
            }
        }
        Ok(keys)
    }
}

/// Turns authorized_keys lines into allowed-signers lines for any principal, namespace `git`.
fn allowed_signers(name: &str, value: &[u8]) -> Result<Vec<String>, VerifyError> {
    let invalid = || VerifyError::Invalid(format!("unable to parse SSH public keys in '{name}'"));
    let text = std::str::from_utf8(value).map_err(|_| invalid())?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let position = tokens.iter().position(|t| is_ssh_key_type(t));
            let (kind, blob) = position
                .and_then(|i| Some((tokens[i], *tokens.get(i + 1)?)))
                .ok_or_else(invalid)?;
            base64::engine::general_purpose::STANDARD
                .decode(blob)
                .map_err(|_| invalid())?;
            Ok(format!("* namespaces=\"git\" {kind} {blob}"))
        })
        .collect()
}

fn is_ssh_key_type(token: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"]
        .iter()
        .any(|prefix| token.starts_with(prefix))
}

/// A prepared verification environment holding the trusted keys.
pub struct Verifier {
    /// 0700 directory with the GNUPGHOME and the allowed-signers file; removed on drop.
    dir: tempfile::TempDir,
}

impl Verifier {
    /// Writes the allowed-signers file and imports the PGP keys into a private GNUPGHOME.
    pub async fn new(keys: TrustedKeys) -> Result<Self, VerifyError> {
        let TrustedKeys { pgp, ssh_signers } = keys;
        let (dir, key_files) =
            tokio::task::spawn_blocking(move || prepare_directory(&pgp, &ssh_signers))
                .await
                .map_err(|e| unavailable("preparing the trusted keys", e))??;
        let verifier = Self { dir };
        for (name, path) in key_files {
            verifier.import_pgp_key(&name, &path).await?;
        }
        Ok(verifier)
    }

    fn gnupg_home(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }

    async fn import_pgp_key(&self, name: &str, path: &Path) -> Result<(), VerifyError> {
        let mut command = self.command("gpg");
        command
            .arg("--homedir")
            .arg(self.gnupg_home())
            .args([
                "--batch",
                "--no-tty",
                "--quiet",
                "--no-autostart",
                "--import",
            ])
            .arg(path);
        let output = run_command(command, "gpg", "install gnupg").await?;
        if output.status.success() {
            return Ok(());
        }
        Err(VerifyError::Invalid(format!(
            "unable to read armored PGP key ring '{name}'"
        )))
    }

    /// Verifies the commit's signature; returns the signing key (PGP key ID or SSH fingerprint).
    pub async fn verify_commit(&self, repo: &Path, commit: &str) -> Result<String, VerifyError> {
        let raw = self.read_object(repo, "commit", commit).await?;
        let header = raw.split("\n\n").next().unwrap_or_default();
        let signed = header
            .lines()
            .any(|line| line.starts_with("gpgsig ") || line.starts_with("gpgsig-sha256 "));
        if !signed {
            return Err(VerifyError::Unsigned(
                "commit does not have a signature".to_owned(),
            ));
        }
        let output = self
            .git(
                repo,
                &["verify-commit", "--raw", "--end-of-options", commit],
            )
            .await?;
        signer_key(&output).ok_or_else(|| {
            VerifyError::Invalid("unable to verify commit with any of the given keys".to_owned())
        })
    }

    /// Verifies the signature of an annotated tag object; returns the signing key.
    pub async fn verify_tag(&self, repo: &Path, tag_object: &str) -> Result<String, VerifyError> {
        let raw = self.read_object(repo, "tag", tag_object).await?;
        let signed = raw.lines().any(|line| {
            line == "-----BEGIN PGP SIGNATURE-----" || line == "-----BEGIN SSH SIGNATURE-----"
        });
        if !signed {
            return Err(VerifyError::Unsigned("tag is not signed".to_owned()));
        }
        let output = self
            .git(
                repo,
                &["verify-tag", "--raw", "--end-of-options", tag_object],
            )
            .await?;
        signer_key(&output).ok_or_else(|| {
            VerifyError::Invalid("unable to verify tag with any of the given keys".to_owned())
        })
    }

    async fn git(&self, repo: &Path, args: &[&str]) -> Result<std::process::Output, VerifyError> {
        let config = [
            ("gpg.program", "gpg".to_owned()),
            ("gpg.ssh.program", "ssh-keygen".to_owned()),
            (
                "gpg.ssh.allowedSignersFile",
                self.dir
                    .path()
                    .join("allowed_signers")
                    .display()
                    .to_string(),
            ),
        ];
        let mut command = self.command("git");
        command
            .args(args)
            .current_dir(repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_COUNT", config.len().to_string());
        for (index, (key, value)) in config.iter().enumerate() {
            command
                .env(format!("GIT_CONFIG_KEY_{index}"), key)
                .env(format!("GIT_CONFIG_VALUE_{index}"), value);
        }
        run_command(command, "git", "install git").await
    }

    async fn read_object(&self, repo: &Path, kind: &str, sha: &str) -> Result<String, VerifyError> {
        let output = self
            .git(repo, &["cat-file", "--end-of-options", kind, sha])
            .await?;
        if !output.status.success() {
            return Err(VerifyError::Unavailable(format!(
                "reading {kind} '{sha}' failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `program` with a clean environment pointing at the private GNUPGHOME.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.dir.path())
            .env("GNUPGHOME", self.gnupg_home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Runs `command` within [`COMMAND_TIMEOUT`].
async fn run_command(
    mut command: Command,
    program: &str,
    hint: &str,
) -> Result<std::process::Output, VerifyError> {
    tokio::time::timeout(COMMAND_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            VerifyError::Unavailable(format!(
                "{program} timed out after {COMMAND_TIMEOUT:?} during signature verification"
            ))
        })?
        .map_err(|e| unavailable(&format!("running {program} ({hint})"), e))
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> VerifyError {
    VerifyError::Unavailable(format!("{what} failed: {error}"))
}

/// Creates the 0700 directory, its GNUPGHOME, the allowed-signers file and one file per PGP key.
fn prepare_directory(
    pgp: &[(String, Vec<u8>)],
    ssh_signers: &[String],
) -> Result<(tempfile::TempDir, Vec<(String, PathBuf)>), VerifyError> {
    let failed =
        |e: std::io::Error| unavailable("writing the trusted keys to a temporary directory", e);
    let dir = tempfile::Builder::new()
        .prefix("sluice-verify-")
        .tempdir()
        .map_err(failed)?;
    let home = dir.path().join("gnupg");
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&home).map_err(failed)?;
    write_private(
        &home.join("gpg.conf"),
        b"trust-model always\nno-autostart\n",
    )
    .map_err(failed)?;
    let mut signers = ssh_signers.join("\n");
    signers.push('\n');
    write_private(&dir.path().join("allowed_signers"), signers.as_bytes()).map_err(failed)?;
    let mut key_files = Vec::new();
    for (index, (name, key)) in pgp.iter().enumerate() {
        let path = dir.path().join(format!("key-{index}.asc"));
        write_private(&path, key).map_err(failed)?;
        key_files.push((name.clone(), path));
    }
    Ok((dir, key_files))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// The signing key of a successful `verify-* --raw`: the PGP primary key ID (as Flux prints it)
/// or the SSH key fingerprint; `None` unless a trusted key made a good signature.
fn signer_key(output: &std::process::Output) -> Option<String> {
    if !output.status.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.lines().find_map(|line| {
        if let Some(fields) = line.strip_prefix("[GNUPG:] VALIDSIG ") {
            let fields: Vec<&str> = fields.split_whitespace().collect();
            let primary = fields.get(9).or(fields.first())?;
            let start = primary.len().checked_sub(16)?;
            return primary.get(start..).map(str::to_uppercase);
        }
        line.strip_prefix("Good \"git\" signature for ")?
            .split_whitespace()
            .find(|token| token.starts_with("SHA256:"))
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_keys_become_allowed_signers() {
        let keys = b"# deploy\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk= me@host\n\nno-pty ecdsa-sha2-nistp256 AAAA\n";
        assert_eq!(
            allowed_signers("a.sshpub", keys).unwrap(),
            vec![
                "* namespaces=\"git\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk=",
                "* namespaces=\"git\" ecdsa-sha2-nistp256 AAAA",
            ]
        );
        let error = allowed_signers("b.sshpub", b"not a key").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unable to parse SSH public keys in 'b.sshpub'"
        );
        assert!(allowed_signers("c.sshpub", b"ssh-ed25519 !!!").is_err());
    }

    #[test]
    fn secret_keys_split_by_suffix() {
        let secret = SecretData::from_entries(
            "ns",
            "keys",
            [
                ("a.asc".to_owned(), b"pgp".to_vec()),
                ("b.sshpub".to_owned(), b"ssh-ed25519 AAAA".to_vec()),
                ("other".to_owned(), b"pgp too".to_vec()),
            ],
        );
        let keys = TrustedKeys::from_secret(&secret).unwrap();
        assert_eq!(keys.pgp.len(), 2);
        assert_eq!(keys.ssh_signers.len(), 1);
    }

    fn output(code: i32, stderr: &str) -> std::process::Output {
        use std::os::unix::process::ExitStatusExt;
        std::process::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn signer_key_needs_success_and_a_trusted_signer() {
        let pgp = "[GNUPG:] GOODSIG 9C1939D8798094B2 Signer <s@x>\n[GNUPG:] VALIDSIG 4C110AAF7554D1AA59C1D8489C1939D8798094B2 2026-11-21 1795302874 0 4 0 22 8 00 4C110AAF7554D1AA59C1D8489C1939D8798094B2\n";
        assert_eq!(
            signer_key(&output(0, pgp)).as_deref(),
            Some("9C1939D8798094B2")
        );
        assert_eq!(signer_key(&output(1, pgp)), None);
        let ssh = "Good \"git\" signature for * with ED25519 key SHA256:mUbpRlliogB161vRtFd1fe6IX33y4qFUm65zHG46SCE\n";
        assert_eq!(
            signer_key(&output(0, ssh)).as_deref(),
            Some("SHA256:mUbpRlliogB161vRtFd1fe6IX33y4qFUm65zHG46SCE")
        );
        let untrusted =
            "Good \"git\" signature with ED25519 key SHA256:abc\nNo principal matched.\n";
        assert_eq!(signer_key(&output(0, untrusted)), None);
    }
}
