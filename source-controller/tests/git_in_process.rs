//! The artifact of an in-process checkout (no `.git`) is byte-identical to that of a `git`
//! checkout of the same commit: same digest and size.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sluice_e2e::git::{GitCli, GitServer};
use sluice_git::{CheckoutOptions, GitCredentials, GitRemote, RefSelector};
use source_controller::ignore::IgnoreRules;
use source_controller::{Storage, StorageConfig};

fn storage(root: &std::path::Path) -> Storage {
    Storage::new(StorageConfig {
        root: root.to_owned(),
        advertised_address: "localhost".into(),
        retention_ttl: Duration::from_secs(60),
        retention_records: 10,
        max_artifact_size: 1 << 24,
    })
    .expect("storage")
}

/// Pushes a tree with nested and similar files, an executable, a symbolic link, an empty
/// file, a `.sourceignore` and an ignored file.
fn populate(server: &GitServer) {
    server.create_repo("app").expect("create repo");
    let cli = GitCli::new().expect("git");
    let work = tempfile::tempdir().expect("work dir");
    let repo = server.repo_path("app");
    let repo = repo.to_str().expect("utf-8 path");
    let wt = work.path().to_str().expect("utf-8 path");
    cli.run(None, ["clone", "-q", repo, wt]).expect("clone");
    cli.run(Some(work.path()), ["checkout", "-q", "-b", "main"])
        .expect("branch");
    let write = |path: &str, contents: &[u8]| {
        let target = work.path().join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, contents).expect("write");
    };
    for index in 0..30 {
        let body: String = (0..50).map(|l| format!("  k{l}: v{l}\n")).collect();
        let path = format!("apps/{}/cm-{index}.yaml", index % 3);
        write(
            &path,
            format!("kind: ConfigMap\nname: {index}\n{body}").as_bytes(),
        );
    }
    write("empty.yaml", b"");
    write(".sourceignore", b"*.md\n");
    write("NOTES.md", b"ignored\n");
    write("bin/tool.sh", b"#!/bin/sh\n");
    let tool = work.path().join("bin/tool.sh");
    std::fs::set_permissions(tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink("apps", work.path().join("link")).expect("symlink");
    cli.commit_all(work.path(), "init").expect("commit");
    cli.push(work.path(), "HEAD:refs/heads/main").expect("push");
}

#[tokio::test]
async fn in_process_and_git_checkouts_archive_identically() {
    let server = GitServer::builder().start().expect("git server");
    populate(&server);
    let remote = GitRemote {
        url: server.http_url("app"),
        credentials: GitCredentials::default(),
        proxy: None,
        timeout: Duration::from_secs(60),
    };
    let selector = RefSelector::Branch("main".into());
    let dirs = tempfile::tempdir().expect("dirs");
    let root = tempfile::tempdir().expect("storage root");
    let storage = storage(root.path());
    let mut digests = Vec::new();
    for keep_git_dir in [false, true] {
        let dir = dirs.path().join(format!("checkout-{keep_git_dir}"));
        let options = CheckoutOptions {
            keep_git_dir,
            ..CheckoutOptions::default()
        };
        server.clear_requests();
        remote
            .checkout_unresolved(&selector, &dir, &options)
            .await
            .expect("checkout");
        assert_eq!(dir.join(".git").exists(), keep_git_dir);
        assert_eq!(server.requests().len() == 2, !keep_git_dir);
        let rules = IgnoreRules::for_tree(&dir, None).expect("ignore rules");
        let stored = storage
            .archive_dir(&dir, &rules, &format!("gitrepository/ns/{keep_git_dir}"))
            .expect("archive");
        digests.push((stored.digest, stored.size));
    }
    assert_eq!(digests[0], digests[1]);
}
