//! User input reaching git: a pinned commit must be a full commit id before any `git` command
//! sees it (an option-shaped value never runs), and URL userinfo never reaches a message.

use std::time::Duration;

use sluice_e2e::git::GitServer;
use sluice_git::{CheckoutOptions, GitCredentials, GitRemote, RefSelector, is_full_commit_id};

fn remote(url: &str) -> GitRemote {
    GitRemote {
        url: url.to_owned(),
        credentials: GitCredentials::default(),
        proxy: None,
        timeout: Duration::from_secs(60),
    }
}

#[test]
fn full_commit_ids_only() {
    assert!(is_full_commit_id(&"a".repeat(40)));
    assert!(is_full_commit_id(&"0F".repeat(32)));
    for bad in [
        "",
        "abc1234",
        &"g".repeat(40),
        &"a".repeat(41),
        "--upload-pack=x",
    ] {
        assert!(!is_full_commit_id(bad), "{bad}");
    }
}

#[tokio::test]
async fn an_option_shaped_commit_never_reaches_git() {
    let server = GitServer::builder().start().expect("git server");
    server.create_repo("app").expect("repo");
    server
        .commit("app", "main", [("a.yaml", "a")], "first")
        .expect("commit");
    let marker = tempfile::tempdir().expect("tempdir");
    let touched = marker.path().join("ran");
    let selector = RefSelector::Commit {
        sha: format!("--upload-pack=touch {}", touched.display()),
        branch: Some("main".to_owned()),
    };
    let local = server.repo_path("app").display().to_string();
    for url in [local, server.http_url("app")] {
        let work = tempfile::tempdir().expect("tempdir");
        let remote = remote(&url);
        let error = remote
            .checkout_unresolved(
                &selector,
                &work.path().join("c"),
                &CheckoutOptions::default(),
            )
            .await
            .expect_err("refused");
        assert!(
            error.to_string().contains("40 or 64 hexadecimal"),
            "{error}"
        );
        let error = remote.resolve(&selector).await.expect_err("refused");
        assert!(error.to_string().contains("hexadecimal"), "{error}");
        assert!(!touched.exists(), "the option ran");
    }
}

#[tokio::test]
async fn messages_never_carry_userinfo_from_the_url() {
    let server = GitServer::builder().start().expect("git server");
    server.create_repo("app").expect("repo");
    server
        .commit("app", "main", [("a.yaml", "a")], "first")
        .expect("commit");
    let url = server
        .http_url("app")
        .replacen("http://", "http://user:tok3n-secret@", 1);
    let missing = RefSelector::Branch("missing".to_owned());
    let error = remote(&url)
        .resolve(&missing)
        .await
        .expect_err("no such branch");
    let message = error.to_string();
    assert!(message.contains("not found"), "{message}");
    assert!(!message.contains("tok3n"), "{message}");
}
