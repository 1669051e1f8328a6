//! The real `cosign` CLI (sigstore, built from its pinned Go module) for signing test artifacts
//! with key pairs: no Fulcio, no Rekor, nothing outside loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

use crate::{Error, Result, tools};

/// Password of every key pair made here (cosign encrypts private keys), passed as
/// `COSIGN_PASSWORD`.
pub const KEY_PASSWORD: &str = "cosign-test-password";
/// Bound on one cosign invocation; signing is local and the registry is on loopback.
const COSIGN_TIMEOUT: Duration = Duration::from_secs(120);

/// cosign with a private HOME, Docker config and TUF root, so it reads no user configuration
/// or credentials; key files live in the same directory until it is dropped.
pub struct Cosign {
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl Cosign {
    /// cosign from `e2e/tools/build.sh cosign` (built on first use).
    pub fn new() -> Result<Self> {
        Ok(Self {
            binary: tools::binary("cosign")?,
            dir: tempfile::Builder::new()
                .prefix("sluice-cosign-")
                .tempdir()?,
        })
    }

    /// Runs `cosign <args>` in the key directory.
    pub async fn run(&self, args: &[&str]) -> Result<()> {
        let home = self.dir.path();
        let child = tokio::process::Command::new(&self.binary)
            .args(args)
            .current_dir(home)
            .env_clear()
            .env("HOME", home)
            .env("DOCKER_CONFIG", home.join("docker"))
            .env("TUF_ROOT", home.join("tuf"))
            .env("COSIGN_PASSWORD", KEY_PASSWORD)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(COSIGN_TIMEOUT, child)
            .await
            .map_err(|_| {
                Error::Setup(format!(
                    "cosign {args:?} timed out after {COSIGN_TIMEOUT:?}"
                ))
            })??;
        if !output.status.success() {
            return Err(Error::Setup(format!(
                "cosign {args:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// `cosign generate-key-pair`: `<prefix>.key` (encrypted); returns the PEM of `<prefix>.pub`.
    pub async fn generate_key_pair(&self, prefix: &str) -> Result<String> {
        self.run(&["generate-key-pair", "--output-key-prefix", prefix])
            .await?;
        self.public_key(prefix)
    }

    /// `cosign import-key-pair` of a PKCS#8 DER private key; returns the PEM of `<prefix>.pub`.
    pub async fn import_key_pair(&self, prefix: &str, pkcs8: &[u8]) -> Result<String> {
        let source = self.path(&format!("{prefix}-source.pem"));
        std::fs::write(&source, pem_block("PRIVATE KEY", pkcs8))?;
        let source = source.to_string_lossy().into_owned();
        let args = [
            "import-key-pair",
            "--key",
            &source,
            "--output-key-prefix",
            prefix,
        ];
        self.run(&args).await?;
        self.public_key(prefix)
    }

    /// `cosign sign` of `reference` (`host/repo@sha256:…`) with `<prefix>.key`, without the
    /// transparency log, over plain HTTP to the test registry.
    pub async fn sign(&self, prefix: &str, reference: &str) -> Result<()> {
        let key = self.path(&format!("{prefix}.key"));
        self.run(&[
            "sign",
            "--key",
            &key.to_string_lossy(),
            "--tlog-upload=false",
            "--yes",
            "--allow-http-registry",
            "--allow-insecure-registry",
            reference,
        ])
        .await
    }

    /// The PEM public key cosign wrote as `<prefix>.pub`.
    pub fn public_key(&self, prefix: &str) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.path(&format!("{prefix}.pub")),
        )?)
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `der` as a PEM block with `label`.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
