//! `spec.verify`: PGP and SSH signatures on HEAD and tags, untrusted and unsigned objects,
//! and a missing key Secret.

mod common;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use common::{Harness, condition, git_artifact, git_conditions, git_failed_with, git_ready, has};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_api::source::{GitRepository, GitVerificationMode};
use sluice_e2e::git::{GitCli, GitServer};

/// A PGP key (in a private GNUPGHOME) and an SSH key that sign commits and tags.
struct Signer {
    dir: tempfile::TempDir,
    fingerprint: String,
}

impl Signer {
    fn new(name: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("signer-").tempdir()?;
        let mut signer = Self {
            dir,
            fingerprint: String::new(),
        };
        std::fs::create_dir(signer.gnupg_home())?;
        std::fs::set_permissions(
            signer.gnupg_home(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let user_id = format!("{name} <{name}@sluice.invalid>");
        signer.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &user_id,
            "ed25519",
            "sign",
            "never",
        ])?;
        let listing = signer.gpg(&["--list-keys", "--with-colons"])?;
        let fingerprint = listing
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| field.len() == 40))
            .context("generated key has a fingerprint")?
            .to_owned();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(signer.ssh_key()))?;
        signer.fingerprint = fingerprint;
        Ok(signer)
    }

    fn gnupg_home(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }

    fn ssh_key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    fn gpg(&self, args: &[&str]) -> Result<String> {
        run(Command::new("gpg")
            .arg("--homedir")
            .arg(self.gnupg_home())
            .args(["--batch", "--no-tty"])
            .args(args))
    }

    fn pgp_public_key(&self) -> Result<String> {
        self.gpg(&["--armor", "--export", &self.fingerprint])
    }

    fn ssh_public_key(&self) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.ssh_key().with_extension("pub"),
        )?)
    }

    /// `SHA256:…`, as Flux reports SSH signers.
    fn ssh_fingerprint(&self) -> Result<String> {
        let listing = run(Command::new("ssh-keygen")
            .args(["-E", "sha256", "-l", "-f"])
            .arg(self.ssh_key().with_extension("pub")))?;
        listing
            .split_whitespace()
            .find(|token| token.starts_with("SHA256:"))
            .map(str::to_owned)
            .context("ssh-keygen prints a fingerprint")
    }

    /// The 16-hex-digit key ID Flux reports for PGP signers.
    fn pgp_key_id(&self) -> String {
        self.fingerprint[24..].to_owned()
    }

    /// A git client that signs with PGP (`ssh == false`) or SSH.
    fn git(&self, ssh: bool) -> Result<GitCli> {
        let cli = GitCli::new()?.with_env("GNUPGHOME", &self.gnupg_home().display().to_string());
        Ok(if ssh {
            cli.with_config("gpg.format", "ssh")
                .with_config("user.signingkey", &self.ssh_key().display().to_string())
        } else {
            cli.with_config("user.signingkey", &self.fingerprint)
        })
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.gnupg_home())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

fn run(command: &mut Command) -> Result<String> {
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Commits `files` on `main` of `repo` (signed when `git` signs, `-S`) and pushes; returns the SHA.
fn push_commit(
    server: &GitServer,
    repo: &str,
    git: &GitCli,
    sign: bool,
    files: &[(&str, &str)],
) -> Result<String> {
    let work = tempfile::tempdir()?;
    let dir = work.path().join("work");
    git.clone_repo(&server.repo_path(repo).display().to_string(), &dir)?;
    git.run(Some(&dir), ["checkout", "-q", "-B", "main"])?;
    for (path, contents) in files {
        std::fs::write(dir.join(path), contents)?;
    }
    git.run(Some(&dir), ["add", "--all"])?;
    let mut args = vec!["commit", "-q", "--allow-empty", "-m", "change"];
    if sign {
        args.push("-S");
    }
    git.run(Some(&dir), args)?;
    git.push(&dir, "HEAD:refs/heads/main")?;
    Ok(git
        .run(Some(&dir), ["rev-parse", "HEAD"])?
        .trim()
        .to_owned())
}

/// Creates the signed annotated tag `name` on `target` and pushes it; returns the tag object SHA.
fn push_signed_tag(server: &GitServer, repo: &str, git: &GitCli, name: &str) -> Result<String> {
    let work = tempfile::tempdir()?;
    let dir = work.path().join("work");
    git.clone_repo(&server.repo_path(repo).display().to_string(), &dir)?;
    git.run(
        Some(&dir),
        ["tag", "-s", "-m", "release", name, "origin/main"],
    )?;
    git.push(&dir, &format!("refs/tags/{name}"))?;
    Ok(git.run(Some(&dir), ["rev-parse", name])?.trim().to_owned())
}

fn spec(
    server: &GitServer,
    repo: &str,
    reference: serde_json::Value,
    verify: serde_json::Value,
) -> serde_json::Value {
    json!({"url": server.http_url(repo), "interval": "1h", "timeout": "20s", "ref": reference, "verify": verify})
}

fn source_verified(object: &GitRepository) -> Option<&Condition> {
    condition(git_conditions(object), "SourceVerified")
}

fn verification_mode(object: &GitRepository) -> Option<GitVerificationMode> {
    object
        .status
        .as_ref()
        .and_then(|s| s.source_verification_mode)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_signatures_verify_with_pgp_and_ssh_keys() -> Result<()> {
    let harness = Harness::start("git-verify-head").await?;
    let server = GitServer::builder().start()?;
    let trusted = Signer::new("trusted")?;
    let stranger = Signer::new("stranger")?;
    for repo in ["pgp", "ssh", "unsigned", "untrusted"] {
        server.create_repo(repo)?;
    }
    let pgp_commit = push_commit(&server, "pgp", &trusted.git(false)?, true, &[("a", "pgp")])?;
    let ssh_commit = push_commit(&server, "ssh", &trusted.git(true)?, true, &[("a", "ssh")])?;
    let signed = push_commit(
        &server,
        "unsigned",
        &trusted.git(false)?,
        true,
        &[("a", "v1")],
    )?;
    push_commit(
        &server,
        "untrusted",
        &stranger.git(true)?,
        true,
        &[("a", "x")],
    )?;
    harness
        .create_secret(
            "keys",
            &[
                ("trusted.asc", &trusted.pgp_public_key()?),
                ("trusted.sshpub", &trusted.ssh_public_key()?),
            ],
        )
        .await?;
    let head = json!({"mode": "HEAD", "secretRef": {"name": "keys"}});
    let main = json!({"branch": "main"});
    harness
        .create_git("pgp", spec(&server, "pgp", main.clone(), head.clone()))
        .await?;
    let legacy = json!({"mode": "head", "secretRef": {"name": "keys"}});
    harness
        .create_git("ssh", spec(&server, "ssh", main.clone(), legacy))
        .await?;
    harness
        .create_git(
            "unsigned",
            spec(&server, "unsigned", main.clone(), head.clone()),
        )
        .await?;
    harness
        .create_git(
            "untrusted",
            spec(&server, "untrusted", main.clone(), head.clone()),
        )
        .await?;
    let missing = json!({"secretRef": {"name": "absent"}});
    harness
        .create_git("missing", spec(&server, "pgp", main.clone(), missing))
        .await?;

    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    for n in ["pgp", "ssh"] {
        eprintln!("DEBUG {n} {:?}", harness.git_api().get(n).await?.status);
    }
    let pgp = harness.wait_git("pgp", "Ready", git_ready).await?;
    let verified = source_verified(&pgp).context("SourceVerified is set")?;
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "Succeeded")
    );
    assert_eq!(
        verified.message,
        format!(
            "verified signature of\n\t- commit '{pgp_commit}' with key '{}'",
            trusted.pgp_key_id()
        )
    );
    assert_eq!(verification_mode(&pgp), Some(GitVerificationMode::Head));
    assert_eq!(
        git_artifact(&pgp)?.revision,
        format!("main@sha1:{pgp_commit}")
    );

    let ssh = harness.wait_git("ssh", "Ready", git_ready).await?;
    let verified = source_verified(&ssh).context("SourceVerified is set")?;
    assert_eq!(verified.status, "True");
    assert_eq!(
        verified.message,
        format!(
            "verified signature of\n\t- commit '{ssh_commit}' with key '{}'",
            trusted.ssh_fingerprint()?
        )
    );
    assert_eq!(
        verification_mode(&ssh),
        Some(GitVerificationMode::Head),
        "legacy 'head' is recorded as HEAD"
    );

    let untrusted = harness
        .wait_git(
            "untrusted",
            "InvalidCommitSignature",
            git_failed_with("InvalidCommitSignature"),
        )
        .await?;
    assert!(has(
        git_conditions(&untrusted),
        "SourceVerified",
        "False",
        "InvalidCommitSignature"
    ));
    assert!(
        untrusted
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_none(),
        "no artifact for an untrusted signature"
    );
    assert_eq!(verification_mode(&untrusted), None);

    let missing = harness
        .wait_git(
            "missing",
            "VerificationError",
            git_failed_with("VerificationError"),
        )
        .await?;
    let message = &source_verified(&missing)
        .context("SourceVerified is set")?
        .message;
    assert!(
        message.starts_with("PGP public keys secret error:"),
        "{message}"
    );
    assert!(
        missing
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_none()
    );

    // A verified revision, then an unsigned one: the old artifact stays and Ready turns False.
    let first = harness.wait_git("unsigned", "Ready", git_ready).await?;
    assert_eq!(
        git_artifact(&first)?.revision,
        format!("main@sha1:{signed}")
    );
    let unsigned = push_commit(&server, "unsigned", &GitCli::new()?, false, &[("a", "v2")])?;
    harness
        .request_git_reconcile("unsigned", "unsigned-1")
        .await?;
    let failed = harness
        .wait_git(
            "unsigned",
            "InvalidCommitSignature",
            git_failed_with("InvalidCommitSignature"),
        )
        .await?;
    let verified = source_verified(&failed).context("SourceVerified is set")?;
    assert_eq!(verified.status, "False");
    assert_eq!(
        verified.message,
        format!(
            "signature verification of commit '{unsigned}' failed: commit does not have a signature"
        )
    );
    assert_eq!(
        git_artifact(&failed)?.revision,
        format!("main@sha1:{signed}"),
        "the verified artifact stays"
    );
    let stored: Vec<_> = std::fs::read_dir(
        harness
            .storage_root()
            .join("gitrepository")
            .join(&harness.namespace)
            .join("unsigned"),
    )
    .map(|entries| entries.filter_map(|e| e.ok()).collect())
    .unwrap_or_default();
    assert_eq!(
        stored.len(),
        1,
        "no artifact is stored for the unverified revision"
    );

    for (name, secret) in [
        ("pgp", trusted.pgp_key_id()),
        ("ssh", trusted.ssh_fingerprint()?),
    ] {
        let object = harness.git_api().get(name).await?;
        let text = serde_json::to_string(&object.status)?;
        assert!(
            !text.contains("BEGIN PGP PUBLIC KEY") && !text.contains("ssh-ed25519 AAAA"),
            "{text}"
        );
        assert!(text.contains(&secret));
    }
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_modes_verify_the_tag_object() -> Result<()> {
    let harness = Harness::start("git-verify-tag").await?;
    let server = GitServer::builder().start()?;
    let signer = Signer::new("releaser")?;
    server.create_repo("app")?;
    let commit = push_commit(&server, "app", &signer.git(true)?, true, &[("a", "1")])?;
    let tag_object = push_signed_tag(&server, "app", &signer.git(false)?, "v1.0.0")?;
    server.annotated_tag("app", "v2.0.0", &commit, "unsigned release")?;
    harness
        .create_secret(
            "keys",
            &[
                ("releaser.asc", &signer.pgp_public_key()?),
                ("releaser.sshpub", &signer.ssh_public_key()?),
            ],
        )
        .await?;
    let verify = |mode: &str| json!({"mode": mode, "secretRef": {"name": "keys"}});
    let tag = json!({"tag": "v1.0.0"});
    harness
        .create_git("tag", spec(&server, "app", tag.clone(), verify("Tag")))
        .await?;
    harness
        .create_git("both", spec(&server, "app", tag, verify("TagAndHEAD")))
        .await?;
    harness
        .create_git(
            "semver",
            spec(&server, "app", json!({"semver": "^1"}), verify("Tag")),
        )
        .await?;
    harness
        .create_git(
            "branch",
            spec(&server, "app", json!({"branch": "main"}), verify("Tag")),
        )
        .await?;
    harness
        .create_git(
            "unsigned-tag",
            spec(&server, "app", json!({"tag": "v2.0.0"}), verify("Tag")),
        )
        .await?;

    let key_id = signer.pgp_key_id();
    let tag_line = format!("\n\t- tag 'v1.0.0@{tag_object}' with key '{key_id}'");
    for name in ["tag", "semver"] {
        let ready = harness.wait_git(name, "Ready", git_ready).await?;
        let verified = source_verified(&ready).context("SourceVerified is set")?;
        assert_eq!(
            verified.message,
            format!("verified signature of{tag_line}"),
            "{name}"
        );
        assert_eq!(verification_mode(&ready), Some(GitVerificationMode::Tag));
        assert_eq!(
            git_artifact(&ready)?.revision,
            format!("v1.0.0@sha1:{commit}")
        );
    }
    let both = harness.wait_git("both", "Ready", git_ready).await?;
    assert_eq!(
        source_verified(&both)
            .context("SourceVerified is set")?
            .message,
        format!(
            "verified signature of{tag_line}\n\t- commit '{commit}' with key '{}'",
            signer.ssh_fingerprint()?
        )
    );
    assert_eq!(
        verification_mode(&both),
        Some(GitVerificationMode::TagAndHead)
    );

    // Widening the mode from Tag to TagAndHEAD re-verifies the unchanged revision.
    let patch = json!({"spec": {"verify": {"mode": "TagAndHEAD"}}});
    harness
        .git_api()
        .patch("tag", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let widened = harness
        .wait_git("tag", "HEAD to be verified too", |o| {
            git_ready(o) && verification_mode(o) == Some(GitVerificationMode::TagAndHead)
        })
        .await?;
    let message = &source_verified(&widened)
        .context("SourceVerified is set")?
        .message;
    assert!(
        message.contains(&format!("- commit '{commit}'")),
        "{message}"
    );

    let branch = harness
        .wait_git("branch", "Stalled", |o| {
            has(
                git_conditions(o),
                "Stalled",
                "True",
                "InvalidVerificationMode",
            )
        })
        .await?;
    assert!(has(
        git_conditions(&branch),
        "SourceVerified",
        "False",
        "InvalidVerificationMode"
    ));
    assert!(has(
        git_conditions(&branch),
        "Ready",
        "False",
        "InvalidVerificationMode"
    ));

    let unsigned = harness
        .wait_git(
            "unsigned-tag",
            "InvalidGitObject",
            git_failed_with("InvalidGitObject"),
        )
        .await?;
    assert!(has(
        git_conditions(&unsigned),
        "SourceVerified",
        "False",
        "InvalidGitObject"
    ));
    harness.stop().await;
    Ok(())
}
