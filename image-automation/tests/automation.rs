//! The controller against the real apiserver and a real git server: pushes with the rendered
//! message and author, another branch, a remote that moved, no-op runs, unresolved markers and
//! authentication failures.

mod common;

use std::collections::BTreeMap;

use anyhow::Result;
use common::{Harness, PASSWORD, REPO, condition, ready_is};
use kube::api::{Patch, PatchParams};
use serde_json::json;

const APP: &str = "ghcr.io/org/app";

fn deployment(tag: &str, policy: &str) -> String {
    format!(
        "# keep me\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: '{APP}:{tag}'   # {{\"$imagepolicy\": \"{policy}\"}}\n"
    )
}

fn commit_spec() -> serde_json::Value {
    json!({
        "checkout": {"ref": {"branch": "main"}},
        "commit": {
            "author": {"name": "Fluxbot", "email": "fluxbot@example.com"},
            "messageTemplate": "{{ .AutomationObject }}: {{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }} {{ end }}[{{ .Values.env }}]",
            "messageTemplateValues": {"env": "prod"},
        },
    })
}

async fn seeded(prefix: &str, files: BTreeMap<String, String>) -> Result<(Harness, String)> {
    let harness = Harness::start(prefix).await?;
    let head = harness.git.commit(REPO, "main", files, "seed")?;
    harness.create_source(PASSWORD).await?;
    Ok((harness, head))
}

#[tokio::test]
async fn new_latest_ref_is_pushed_then_no_op_then_followed() -> Result<()> {
    let (harness, _) = seeded("iua-push", BTreeMap::new()).await?;
    let policy = format!("{}:app", harness.namespace);
    let seed = harness.git.commit(
        REPO,
        "main",
        [("apps/app.yaml", deployment("1.0.0", &policy))],
        "app",
    )?;
    harness.set_policy("app", APP, "1.0.1").await?;
    harness.create_automation("auto", commit_spec()).await?;

    let head = harness.wait_head_change("main", &seed).await?;
    assert_eq!(
        harness.file("main", "apps/app.yaml")?,
        deployment("1.0.1", &policy)
    );
    assert_eq!(
        harness.show(&head, "%an <%ae>|%s")?,
        format!(
            "Fluxbot <fluxbot@example.com>|{}/auto: {APP}:1.0.0 -> {APP}:1.0.1 [prod]",
            harness.namespace
        )
    );
    assert_eq!(harness.show(&head, "%P")?, seed);
    let automation = harness
        .wait_automation("auto", |a| {
            ready_is(a, "True")
                && a.status
                    .as_ref()
                    .and_then(|s| s.last_push_commit.as_deref())
                    == Some(&head)
        })
        .await?;
    let status = automation.status.unwrap();
    assert_eq!(
        status.observed_source_revision,
        Some(format!("main@sha1:{head}"))
    );
    assert_eq!(status.observed_policies["app"].tag, "1.0.1");
    assert!(status.last_push_time.is_some() && status.last_automation_run_time.is_some());
    assert_eq!(
        condition_message(&harness, "auto").await?,
        "repository up-to-date"
    );
    flux_get_images_update_shows_ready(&harness, "auto").await?;

    // A requested run with nothing to change pushes nothing, and fetches no pack: the remote
    // branch still points at the pushed commit and the policies are the observed ones.
    harness.git.clear_requests();
    let token = "no-op-1";
    let annotation =
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    harness
        .automations()
        .patch("auto", &PatchParams::default(), &Patch::Merge(&annotation))
        .await?;
    harness
        .wait_automation("auto", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(token)
        })
        .await?;
    assert_eq!(harness.git.head(REPO, "main")?, head);
    assert_eq!(harness.git.fetches(), 0, "{:?}", harness.git.requests());

    // A new latestRef is pushed within seconds (the interval is an hour).
    harness.set_policy("app", APP, "1.0.2").await?;
    harness.wait_head_change("main", &head).await?;
    assert_eq!(
        harness.file("main", "apps/app.yaml")?,
        deployment("1.0.2", &policy)
    );
    Ok(())
}

/// `flux get images update` (the flux CLI, built from its Go module) lists the automation Ready.
async fn flux_get_images_update_shows_ready(harness: &Harness, name: &str) -> Result<()> {
    let kubeconfig = sluice_e2e::ControlPlane::shared().await?.kubeconfig_path();
    let args = ["get", "images", "update", "-n", harness.namespace.as_str()];
    let listed = sluice_e2e::flux::flux_cli(kubeconfig, &args)?;
    let row: Vec<&str> = listed
        .stdout
        .lines()
        .map(|line| line.split('\t').map(str::trim).collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_default();
    anyhow::ensure!(
        listed.success && row.contains(&"True") && row.contains(&"repository up-to-date"),
        "row {row:?} of\n{}",
        listed.text()
    );
    Ok(())
}

async fn condition_message(harness: &Harness, name: &str) -> Result<String> {
    let automation = harness.automations().get(name).await?;
    Ok(condition(&automation, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default())
}

#[tokio::test]
async fn pushes_to_another_branch_with_a_refspec() -> Result<()> {
    let (harness, _) = seeded("iua-branch", BTreeMap::new()).await?;
    let policy = format!("{}:app:tag", harness.namespace);
    let file = format!("apps:\n  tag: v1 # {{\"$imagepolicy\": \"{policy}\"}}\n");
    let main = harness
        .git
        .commit(REPO, "main", [("apps/values.yaml", file.clone())], "values")?;
    harness.set_policy("app", APP, "v2").await?;
    let mut git = commit_spec();
    git["push"] = json!({"branch": "auto", "refspec": "refs/heads/auto:refs/heads/review"});
    harness.create_automation("auto", git).await?;

    let pushed = harness.wait_head_change("auto", "").await?;
    assert_eq!(harness.git.head(REPO, "review")?, pushed);
    assert_eq!(harness.git.head(REPO, "main")?, main, "main is untouched");
    assert_eq!(
        harness.file("auto", "apps/values.yaml")?,
        file.replace("v1", "v2")
    );
    let automation = harness
        .wait_automation("auto", |a| ready_is(a, "True"))
        .await?;
    let status = automation.status.unwrap();
    assert_eq!(status.last_push_commit.as_deref(), Some(pushed.as_str()));
    assert_eq!(
        status.observed_source_revision,
        Some(format!("main@sha1:{main}"))
    );
    Ok(())
}

/// A pre-receive hook moves `main` (a real commit, outside git's quarantine) and refuses the
/// first push, as a rejected non-fast-forward push: the controller clones again and succeeds.
#[tokio::test]
async fn remote_moved_meanwhile_is_retried() -> Result<()> {
    let (harness, _) = seeded("iua-moved", BTreeMap::new()).await?;
    let policy = format!("{}:app", harness.namespace);
    let seed = harness.git.commit(
        REPO,
        "main",
        [("apps/app.yaml", deployment("1.0.0", &policy))],
        "app",
    )?;
    let hook = harness.git.repo_path(REPO).join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap())?;
    std::fs::write(
        &hook,
        "#!/bin/sh\ncat >/dev/null\n[ -f moved ] && exit 0\ntouch moved\n\
         env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \
         GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@example.com GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=other@example.com sh -c '\
         p=$(git rev-parse refs/heads/main) && c=$(echo concurrent | git commit-tree \"$p^{tree}\" -p \"$p\") && git update-ref refs/heads/main \"$c\" \"$p\"'\n\
         echo '! [rejected] main -> main (fetch first)' >&2\nexit 1\n",
    )?;
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&hook)?.permissions(),
        0o755,
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    harness.set_policy("app", APP, "1.0.1").await?;
    harness.create_automation("auto", commit_spec()).await?;

    let automation = harness
        .wait_automation("auto", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.last_push_commit.clone())
                .is_some()
        })
        .await?;
    let pushed = automation.status.unwrap().last_push_commit.unwrap();
    assert_eq!(harness.git.head(REPO, "main")?, pushed);
    let parent = harness.show(&pushed, "%P")?;
    assert_ne!(parent, seed, "the push is on top of the concurrent commit");
    assert_eq!(harness.show(&parent, "%s")?, "concurrent");
    assert_eq!(
        harness.file("main", "apps/app.yaml")?,
        deployment("1.0.1", &policy)
    );
    Ok(())
}

#[tokio::test]
async fn missing_policy_is_reported_and_the_rest_applied() -> Result<()> {
    let (harness, _) = seeded("iua-missing", BTreeMap::new()).await?;
    let ns = harness.namespace.clone();
    let files = [
        ("apps/a.yaml", deployment("1.0.0", &format!("{ns}:app"))),
        ("apps/b.yaml", deployment("1.0.0", &format!("{ns}:gone"))),
    ];
    let seed = harness.git.commit(REPO, "main", files, "two apps")?;
    harness.set_policy("app", APP, "1.0.1").await?;
    harness.create_automation("auto", commit_spec()).await?;

    let automation = harness
        .wait_automation("auto", |a| {
            condition(a, "Ready").is_some_and(|c| c.reason == "DependencyNotReady")
        })
        .await?;
    let message = &condition(&automation, "Ready").unwrap().message;
    assert!(message.contains("apps/b.yaml:11"), "{message}");
    assert!(
        message.contains(&format!("ImagePolicy '{ns}/gone' not found")),
        "{message}"
    );
    assert_ne!(harness.git.head(REPO, "main")?, seed);
    assert_eq!(
        harness.file("main", "apps/a.yaml")?,
        deployment("1.0.1", &format!("{ns}:app"))
    );
    assert_eq!(
        harness.file("main", "apps/b.yaml")?,
        deployment("1.0.0", &format!("{ns}:gone"))
    );
    Ok(())
}

#[tokio::test]
async fn authentication_failure_names_no_secret() -> Result<()> {
    let harness = Harness::start("iua-auth").await?;
    harness
        .git
        .commit(REPO, "main", [("apps/x.yaml", "a: b\n")], "seed")?;
    let wrong = "wr0ng-p4ssw0rd-value";
    harness.create_source(wrong).await?;
    harness.create_automation("auto", commit_spec()).await?;
    let automation = harness
        .wait_automation("auto", |a| ready_is(a, "False"))
        .await?;
    let ready = condition(&automation, "Ready").unwrap();
    assert_eq!(ready.reason, "GitOperationFailed");
    assert!(
        ready.message.contains("failed to checkout source"),
        "{}",
        ready.message
    );
    assert!(!ready.message.contains(wrong), "{}", ready.message);
    Ok(())
}

/// Runs gpg in `home` with `args`; its stdout.
fn gpg(home: &std::path::Path, args: &[&str]) -> Result<String> {
    let output = std::process::Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "sign-pass",
        ])
        .args(args)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn commits_are_signed_with_the_openpgp_key() -> Result<()> {
    let (harness, _) = seeded("iua-sign", BTreeMap::new()).await?;
    let home = tempfile::Builder::new().prefix("gpg-").tempdir_in("/tmp")?;
    gpg(
        home.path(),
        &[
            "--quick-gen-key",
            "Fluxbot <fluxbot@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    )?;
    let armored = gpg(home.path(), &["--armor", "--export-secret-keys"])?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "signing-key"},
        "stringData": {"git.asc": armored, "passphrase": "sign-pass"},
    }))?;
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
        harness.client.clone(),
        &harness.namespace,
    )
    .create(&Default::default(), &secret)
    .await?;
    let policy = format!("{}:app", harness.namespace);
    let seed = harness.git.commit(
        REPO,
        "main",
        [("apps/app.yaml", deployment("1.0.0", &policy))],
        "app",
    )?;
    harness.set_policy("app", APP, "1.0.1").await?;
    let mut git = commit_spec();
    git["commit"]["signingKey"] = json!({"secretRef": {"name": "signing-key"}});
    harness.create_automation("auto", git).await?;

    let head = harness.wait_head_change("main", &seed).await?;
    let verify = std::process::Command::new("git")
        .arg("-C")
        .arg(harness.git.repo_path(REPO))
        .args(["verify-commit", &head])
        .env("GNUPGHOME", home.path())
        .output()?;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let _ = std::process::Command::new("gpgconf")
        .arg("--homedir")
        .arg(home.path())
        .args(["--kill", "gpg-agent"])
        .status();
    Ok(())
}

#[tokio::test]
async fn commits_are_signed_with_a_passphrase_protected_ssh_key() -> Result<()> {
    let (harness, _) = seeded("iua-sshsign", BTreeMap::new()).await?;
    let keys = tempfile::Builder::new()
        .prefix("ssh-sign-")
        .tempdir_in("/tmp")?;
    let key = keys.path().join("id_ed25519");
    let generated = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "ssh-sign-pass",
            "-C",
            "fluxbot",
            "-f",
        ])
        .arg(&key)
        .output()?;
    anyhow::ensure!(generated.status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(&allowed, format!("fluxbot@example.com {public}"))?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "ssh-signing-key"},
        "stringData": {
            "identity": std::fs::read_to_string(&key)?,
            "password": "ssh-sign-pass",
        },
    }))?;
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
        harness.client.clone(),
        &harness.namespace,
    )
    .create(&Default::default(), &secret)
    .await?;
    let policy = format!("{}:app", harness.namespace);
    let seed = harness.git.commit(
        REPO,
        "main",
        [("apps/app.yaml", deployment("1.0.0", &policy))],
        "app",
    )?;
    harness.set_policy("app", APP, "1.0.1").await?;
    let mut git = commit_spec();
    git["commit"]["signingKey"] = json!({"type": "ssh", "secretRef": {"name": "ssh-signing-key"}});
    harness.create_automation("auto", git).await?;

    let head = harness.wait_head_change("main", &seed).await?;
    let verify = std::process::Command::new("git")
        .arg("-C")
        .arg(harness.git.repo_path(REPO))
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
        .args(["verify-commit", &head])
        .output()?;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("Good \"git\" signature"),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn pushes_over_ssh_with_a_deploy_key() -> Result<()> {
    let builder = sluice_e2e::git::GitServer::builder().ssh();
    let harness = Harness::start_with("iua-ssh", builder).await?;
    let policy = format!("{}:app", harness.namespace);
    let seed = harness.git.commit(
        REPO,
        "main",
        [("apps/app.yaml", deployment("1.0.0", &policy))],
        "app",
    )?;
    let ssh = harness.git.ssh().expect("ssh enabled");
    let url = harness.git.ssh_url(REPO).expect("ssh url");
    let data = json!({"identity": ssh.client_private_key()?, "known_hosts": ssh.known_hosts()});
    harness.create_source_at(&url, data).await?;
    harness.set_policy("app", APP, "1.0.1").await?;
    harness.create_automation("auto", commit_spec()).await?;

    harness.wait_head_change("main", &seed).await?;
    assert_eq!(
        harness.file("main", "apps/app.yaml")?,
        deployment("1.0.1", &policy)
    );
    Ok(())
}
