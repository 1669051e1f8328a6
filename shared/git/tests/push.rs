//! Commits and pushes against the e2e git server: HTTP basic auth, HTTPS with a bearer token and
//! a private CA, SSH with a deploy key; branches, refspecs, push options and rejections.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sluice_e2e::git::{GitCli, GitServer};
use sluice_e2e::tls::TestCa;
use sluice_git::{
    CheckoutOptions, CommitAuthor, GitCredentials, GitError, GitRemote, PushTarget, RefSelector,
};
use sluice_secrets::SecretData;

fn remote(url: &str, secret: &[(&str, &str)], ssh: bool) -> GitRemote {
    let entries = secret
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.as_bytes().to_vec()));
    let secret = SecretData::from_entries("ns", "git", entries);
    GitRemote {
        url: url.to_owned(),
        credentials: GitCredentials::from_secret(&secret, ssh).expect("valid credentials"),
        proxy: None,
        timeout: Duration::from_secs(60),
    }
}

fn author() -> CommitAuthor {
    CommitAuthor {
        name: "Sluice Bot".to_owned(),
        email: "bot@sluice.invalid".to_owned(),
    }
}

fn seeded(server: &GitServer) {
    server.create_repo("app").expect("create repo");
    server
        .commit("app", "main", [("app.yaml", "image: app:v1\n")], "init")
        .expect("seed commit");
}

/// Checks out `main` into `dir` and commits a new `app.yaml`; returns the commit.
async fn commit_update(remote: &GitRemote, dir: &Path, image: &str) -> String {
    let resolved = remote
        .resolve(&RefSelector::Branch("main".to_owned()))
        .await
        .expect("resolve main");
    remote
        .checkout(
            &resolved,
            dir,
            &CheckoutOptions {
                keep_git_dir: true,
                ..CheckoutOptions::default()
            },
        )
        .await
        .expect("checkout main");
    std::fs::write(dir.join("app.yaml"), format!("image: {image}\n")).expect("write");
    remote
        .commit_all(dir, &author(), &format!("Update app to {image}"))
        .await
        .expect("commit")
        .expect("a change to commit")
}

/// A seeded server requiring basic auth, and a remote holding its credentials.
fn basic_auth_server() -> (GitServer, GitRemote) {
    let server = GitServer::builder()
        .basic_auth("flux", "s3cret-pw")
        .start()
        .expect("git server");
    seeded(&server);
    let remote = remote(
        &server.http_url("app"),
        &[("username", "flux"), ("password", "s3cret-pw")],
        false,
    );
    (server, remote)
}

fn main_branch() -> Vec<PushTarget> {
    vec![PushTarget::Branch("main".to_owned())]
}

#[tokio::test]
async fn basic_auth_commits_as_the_author_and_pushes_a_branch() {
    let (server, remote) = basic_auth_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let commit = commit_update(&remote, dir.path(), "app:v2").await;
    let unchanged = remote.commit_all(dir.path(), &author(), "again").await;
    assert_eq!(unchanged.expect("commit_all"), None);
    remote
        .push(dir.path(), &main_branch(), &BTreeMap::new())
        .await
        .expect("push");
    assert_eq!(server.head("app", "main").expect("head"), commit);
    let log = GitCli::new()
        .expect("git cli")
        .run(
            Some(&server.repo_path("app")),
            ["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", "main"],
        )
        .expect("log");
    assert_eq!(
        log.trim(),
        "Sluice Bot <bot@sluice.invalid>|Sluice Bot <bot@sluice.invalid>|Update app to app:v2"
    );
}

#[tokio::test]
async fn https_bearer_pushes_to_new_branches_with_push_options() {
    let ca = TestCa::new("git-push-ca").expect("ca");
    let server = GitServer::builder()
        .bearer_token("tok-12345")
        .https(&ca)
        .expect("https")
        .start()
        .expect("git server");
    seeded(&server);
    let bare = server.repo_path("app");
    let cli = GitCli::new().expect("git cli");
    cli.run(
        Some(&bare),
        ["config", "receive.advertisePushOptions", "true"],
    )
    .expect("enable push options");
    let recorded = bare.join("push-options");
    let hook = bare.join("hooks").join("pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ni=0\nwhile [ $i -lt \"${{GIT_PUSH_OPTION_COUNT:-0}}\" ]; do\n  eval \"echo \\$GIT_PUSH_OPTION_$i\" >> {}\n  i=$((i+1))\ndone\n",
            recorded.display()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod hook");
    let https = server.https_url("app").expect("https url");
    let ca_pem = ca.cert_pem();
    let remote = remote(
        &https,
        &[("bearerToken", "tok-12345"), ("ca.crt", &ca_pem)],
        false,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let commit = commit_update(&remote, dir.path(), "app:v3").await;
    let targets = [
        PushTarget::Branch("auto".to_owned()),
        PushTarget::Refspec("HEAD:refs/heads/review".to_owned()),
    ];
    let options = BTreeMap::from([
        ("ci.skip".to_owned(), String::new()),
        ("merge_request.create".to_owned(), "true".to_owned()),
    ]);
    remote
        .push(dir.path(), &targets, &options)
        .await
        .expect("push");
    assert_eq!(server.head("app", "auto").expect("auto"), commit);
    assert_eq!(server.head("app", "review").expect("review"), commit);
    assert_ne!(server.head("app", "main").expect("main"), commit);
    let options = std::fs::read_to_string(&recorded).expect("recorded push options");
    assert_eq!(options, "ci.skip\nmerge_request.create=true\n");
}

#[tokio::test]
async fn ssh_deploy_key_pushes() {
    let server = GitServer::builder().ssh().start().expect("git server");
    seeded(&server);
    let ssh = server.ssh().expect("ssh enabled");
    let identity = ssh.client_private_key().expect("identity");
    let url = server.ssh_url("app").expect("ssh url");
    let remote = remote(
        &url,
        &[("identity", &identity), ("known_hosts", ssh.known_hosts())],
        true,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let commit = commit_update(&remote, dir.path(), "app:v4").await;
    remote
        .push(dir.path(), &main_branch(), &BTreeMap::new())
        .await
        .expect("push");
    assert_eq!(server.head("app", "main").expect("head"), commit);
}

#[tokio::test]
async fn a_push_behind_the_remote_is_rejected_with_a_remedy() {
    let (server, remote) = basic_auth_server();
    let dir = tempfile::tempdir().expect("tempdir");
    commit_update(&remote, dir.path(), "app:v5").await;
    server
        .commit("app", "main", [("other.yaml", "x\n")], "concurrent change")
        .expect("concurrent commit");
    let error = remote
        .push(dir.path(), &main_branch(), &BTreeMap::new())
        .await
        .expect_err("a non-fast-forward push fails");
    let message = error.to_string();
    assert!(message.contains("[rejected]"), "{message}");
    assert!(message.contains("check out again and retry"), "{message}");
    assert!(!message.contains("s3cret-pw"), "{message}");
}

#[tokio::test]
async fn an_anonymous_push_is_an_authentication_error() {
    let server = GitServer::builder().start().expect("git server");
    seeded(&server);
    let remote = remote(&server.http_url("app"), &[], false);
    let dir = tempfile::tempdir().expect("tempdir");
    commit_update(&remote, dir.path(), "app:v6").await;
    let error = remote
        .push(dir.path(), &main_branch(), &BTreeMap::new())
        .await
        .expect_err("anonymous pushes are refused");
    assert!(matches!(error, GitError::Authentication(_)), "{error}");
}
