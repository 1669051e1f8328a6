//! The in-process checkout against the e2e git server gives the same trees, commits and tags
//! as the `git` CLI (paths, contents, modes, symbolic links, submodule directories) with one
//! GET and one POST, and reports refused credentials without the password.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sluice_e2e::git::{GitCli, GitServer};
use sluice_git::{CheckedOut, CheckoutOptions, GitCredentials, GitError, GitRemote, RefSelector};
use sluice_secrets::SecretData;

const PASSWORD: &str = "s3cret-pass-9431";

fn remote(url: &str, password: &str) -> GitRemote {
    let entries = [("username", "git"), ("password", password)]
        .map(|(key, value)| (key.to_owned(), value.as_bytes().to_vec()));
    let secret = SecretData::from_entries("ns", "git", entries);
    GitRemote {
        url: url.to_owned(),
        credentials: GitCredentials::from_secret(&secret, false).expect("valid credentials"),
        proxy: None,
        timeout: Duration::from_secs(60),
    }
}

/// A checked-out tree: each path with its file contents and executable bit, link target or
/// `None` for a directory.
type Tree = BTreeMap<String, Option<(Vec<u8>, bool)>>;

fn read_tree(root: &Path, relative: &str, tree: &mut Tree) {
    for entry in std::fs::read_dir(root.join(relative)).expect("list") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if relative.is_empty() && name == ".git" {
            continue;
        }
        let path = format!("{relative}{name}");
        let kind = entry.file_type().expect("type");
        if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).expect("link");
            let target = format!("-> {}", target.display()).into_bytes();
            tree.insert(path, Some((target, false)));
        } else if kind.is_dir() {
            tree.insert(path.clone(), None);
            read_tree(root, &format!("{path}/"), tree);
        } else {
            let mode = entry.metadata().expect("metadata").permissions().mode();
            let contents = std::fs::read(entry.path()).expect("read");
            tree.insert(path, Some((contents, mode & 0o111 != 0)));
        }
    }
}

/// Commits with many similar files, nested directories, an executable, a symbolic link, an
/// empty file and a submodule; returns the three commits (oldest first).
fn populate(server: &GitServer) -> [String; 3] {
    server.create_repo("app").expect("create repo");
    let cli = GitCli::new().expect("git");
    let work = tempfile::tempdir().expect("work dir");
    let wt = Some(work.path());
    let repo = server.repo_path("app");
    let repo = repo.to_str().expect("utf-8 path");
    cli.run(
        None,
        ["clone", "-q", repo, work.path().to_str().expect("utf-8")],
    )
    .expect("clone");
    cli.run(wt, ["checkout", "-q", "-b", "main"])
        .expect("branch");
    let write = |path: &str, contents: &[u8]| {
        let target = work.path().join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, contents).expect("write");
    };
    let mut commits = Vec::new();
    for round in 0..3 {
        for index in 0..40 {
            let body: String = (0..60)
                .map(|line| format!("  key{line}: value {line} of the manifest {}\n", line * 7))
                .collect();
            let contents =
                format!("apiVersion: v1\nkind: ConfigMap\nname: cm-{index}-{round}\n{body}");
            write(
                &format!("deploy/apps/team-{}/cm-{index}.yaml", index % 4),
                contents.as_bytes(),
            );
        }
        write("README.md", format!("round {round}\n").as_bytes());
        write("empty", b"");
        write("bin/run.sh", b"#!/bin/sh\necho hi\n");
        let script = work.path().join("bin/run.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        if round == 0 {
            std::os::unix::fs::symlink("../README.md", work.path().join("deploy/readme"))
                .expect("symlink");
            write(".gitmodules", b"[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = https://example.invalid/lib.git\n");
        }
        // A submodule (gitlink) that is never initialised.
        let gitlink = "160000,1111111111111111111111111111111111111111,vendor/lib";
        cli.run(wt, ["add", "--all"]).expect("add");
        cli.run(wt, ["update-index", "--add", "--cacheinfo", gitlink])
            .expect("gitlink");
        let message = format!("Round {round}\n\nDetails.");
        cli.run(wt, ["commit", "-q", "-m", &message])
            .expect("commit");
        let head = cli.run(wt, ["rev-parse", "HEAD"]).expect("head");
        commits.push(head.trim().to_owned());
    }
    cli.push(work.path(), "HEAD:refs/heads/main").expect("push");
    server
        .tag("app", "light", &commits[0])
        .expect("lightweight tag");
    server
        .annotated_tag("app", "v1.0.0", "main", "release")
        .expect("annotated tag");
    commits.try_into().expect("three commits")
}

/// Checks `selector` out in process and with `git`; asserts the in-process one took one GET
/// and one POST when `in_process`, and that both agree.
async fn compare(server: &GitServer, selector: RefSelector, in_process: bool) -> CheckedOut {
    let remote = remote(&server.http_url("app"), PASSWORD);
    let dirs = tempfile::tempdir().expect("dirs");
    let (fast, slow) = (dirs.path().join("fast"), dirs.path().join("git"));
    server.clear_requests();
    let fetched = remote
        .checkout_unresolved(&selector, &fast, &CheckoutOptions::default())
        .await
        .expect("in-process checkout");
    let requests: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    if in_process {
        assert_eq!(
            requests,
            ["GET /app.git/info/refs", "POST /app.git/git-upload-pack"],
            "{selector:?}"
        );
        assert!(!fast.join(".git").exists());
    }
    let git_options = CheckoutOptions {
        keep_git_dir: true,
        ..CheckoutOptions::default()
    };
    let cloned = remote
        .checkout_unresolved(&selector, &slow, &git_options)
        .await
        .expect("git checkout");
    assert!(slow.join(".git").is_dir());
    assert_eq!(fetched, cloned, "{selector:?}");
    let (mut fast_tree, mut slow_tree) = (Tree::new(), Tree::new());
    read_tree(&fast, "", &mut fast_tree);
    read_tree(&slow, "", &mut slow_tree);
    assert_eq!(
        fast_tree.keys().collect::<Vec<_>>(),
        slow_tree.keys().collect::<Vec<_>>()
    );
    assert!(fast_tree == slow_tree, "trees differ for {selector:?}");
    assert!(fast_tree.len() > 40);
    assert_eq!(
        fast_tree["vendor/lib"], None,
        "a submodule is an empty directory"
    );
    assert_eq!(
        fast_tree["deploy/readme"],
        Some((b"-> ../README.md".to_vec(), false))
    );
    assert_eq!(fast_tree["bin/run.sh"].as_ref().map(|f| f.1), Some(true));
    assert_eq!(fast_tree["empty"], Some((Vec::new(), false)));
    fetched
}

#[tokio::test]
async fn in_process_checkouts_match_git() {
    let server = GitServer::builder()
        .basic_auth("git", PASSWORD)
        .start()
        .expect("git server");
    let [first, middle, last] = populate(&server);

    let branch = compare(&server, RefSelector::Branch("main".into()), true).await;
    assert_eq!(branch.commit, last);
    assert_eq!(branch.subject, "Round 2");
    assert!(branch.committed_at.is_some_and(|time| time > 1_600_000_000));
    assert_eq!(branch.revision, format!("main@sha1:{last}"));
    assert_eq!(branch.tag, None);

    let annotated = compare(&server, RefSelector::Tag("v1.0.0".into()), true).await;
    assert_eq!(annotated.commit, last);
    let tag = annotated.tag.expect("tag");
    assert!(tag.object.is_some_and(|object| object != last));

    let light = compare(&server, RefSelector::Tag("light".into()), true).await;
    assert_eq!(light.commit, first);
    assert_eq!(light.tag.expect("tag").object, None);

    let named = compare(&server, RefSelector::Name("refs/tags/light".into()), true).await;
    assert_eq!(named.revision, format!("refs/tags/light@sha1:{first}"));

    let tip = RefSelector::Commit {
        sha: first.clone(),
        branch: None,
    };
    assert_eq!(compare(&server, tip, true).await.commit, first);

    // Not a ref tip: the server refuses it in process, so `git` fetches the branch.
    let inner = RefSelector::Commit {
        sha: middle.clone(),
        branch: Some("main".into()),
    };
    assert_eq!(compare(&server, inner, false).await.commit, middle);
}

#[tokio::test]
async fn resolved_branches_are_fetched_in_process() {
    let server = GitServer::builder().start().expect("git server");
    let [_, _, last] = populate(&server);
    let remote = remote(&server.http_url("app"), "");
    let resolved = remote
        .resolve(&RefSelector::Branch("main".into()))
        .await
        .expect("resolve");
    let dir = tempfile::tempdir().expect("dir");
    server.clear_requests();
    let checked_out = remote
        .checkout(
            &resolved,
            &dir.path().join("c"),
            &CheckoutOptions::default(),
        )
        .await
        .expect("checkout");
    assert_eq!(checked_out.commit, last);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error() {
    let server = GitServer::builder()
        .basic_auth("git", PASSWORD)
        .start()
        .expect("git server");
    populate(&server);
    let wrong = "wrong-Pa55word-7702";
    let remote = remote(&server.http_url("app"), wrong);
    let dir = tempfile::tempdir().expect("dir");
    server.clear_requests();
    let error = remote
        .checkout_unresolved(
            &RefSelector::Branch("main".into()),
            &dir.path().join("c"),
            &CheckoutOptions::default(),
        )
        .await
        .expect_err("refused");
    assert!(matches!(error, GitError::Authentication(_)), "{error:?}");
    let message = error.to_string();
    assert!(!message.contains(wrong), "{message}");
    assert!(!message.contains("d3Jvbmc"), "{message}");
    assert_eq!(server.requests().len(), 1, "no git retry after a 401");
}
