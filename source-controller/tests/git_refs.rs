//! Reference kinds, content settings (ignore, include, sparse checkout) and unsupported fields.

mod common;

use anyhow::Result;
use common::{Harness, condition, git_artifact, git_conditions, git_failed_with, git_ready, has};
use serde_json::json;
use sluice_e2e::git::{GitCli, GitServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ref_kind_resolves_to_flux_revisions() -> Result<()> {
    let harness = Harness::start("git-refs").await?;
    let server = GitServer::builder().start()?;
    server.create_repo("app")?;
    let first = server.commit("app", "main", [("v", "1.0.0")], "one")?;
    server.tag("app", "v1.0.0", &first)?;
    let second = server.commit("app", "main", [("v", "1.2.0")], "two")?;
    server.annotated_tag("app", "v1.2.0", &second, "release 1.2.0")?;
    let third = server.commit("app", "main", [("v", "2.0.0-rc.1")], "three")?;
    server.tag("app", "v2.0.0-rc.1", &third)?;
    let master = server.commit("app", "master", [("v", "master")], "on master")?;
    let feature = server.commit("app", "feature", [("v", "feature")], "on feature")?;
    GitCli::new()?.run(
        Some(&server.repo_path("app")),
        ["update-ref", "refs/pull/7/head", &feature],
    )?;

    let url = server.http_url("app");
    let cases = [
        (
            "default-master",
            json!(null),
            format!("master@sha1:{master}"),
            "master",
        ),
        (
            "branch",
            json!({"branch": "main"}),
            format!("main@sha1:{third}"),
            "2.0.0-rc.1",
        ),
        (
            "tag",
            json!({"tag": "v1.0.0"}),
            format!("v1.0.0@sha1:{first}"),
            "1.0.0",
        ),
        (
            "annotated-tag",
            json!({"tag": "v1.2.0"}),
            format!("v1.2.0@sha1:{second}"),
            "1.2.0",
        ),
        (
            "semver",
            json!({"semver": ">=1.0.0 <2.0.0"}),
            format!("v1.2.0@sha1:{second}"),
            "1.2.0",
        ),
        (
            "semver-over-tag",
            json!({"tag": "v1.0.0", "semver": "~1.0"}),
            format!("v1.0.0@sha1:{first}"),
            "1.0.0",
        ),
        (
            "name",
            json!({"name": "refs/pull/7/head"}),
            format!("refs/pull/7/head@sha1:{feature}"),
            "feature",
        ),
        (
            "commit",
            json!({"commit": first}),
            format!("sha1:{first}"),
            "1.0.0",
        ),
        (
            "commit-on-branch",
            json!({"branch": "main", "commit": second}),
            format!("main@sha1:{second}"),
            "1.2.0",
        ),
    ];
    for (name, reference, _, _) in &cases {
        let mut spec = json!({"url": url, "interval": "1h"});
        if !reference.is_null() {
            spec["ref"] = reference.clone();
        }
        harness.create_git(name, spec).await?;
    }
    for (name, _, revision, content) in &cases {
        let ready = harness.wait_git(name, "Ready", git_ready).await?;
        let artifact = git_artifact(&ready)?;
        assert_eq!(&artifact.revision, revision, "{name}");
        let files = harness
            .fetch_artifact(&artifact.url, &artifact.digest)
            .await?;
        assert_eq!(files.get("v").map(String::as_str), Some(*content), "{name}");
    }
    // An unchanged annotated tag is recognised by its peeled commit: no new fetch.
    server.clear_requests();
    let unchanged = harness
        .request_git_reconcile("annotated-tag", "again")
        .await?;
    assert_eq!(
        git_artifact(&unchanged)?.revision,
        format!("v1.2.0@sha1:{second}")
    );
    assert_eq!(server.fetches(), 0, "{:#?}", server.requests());
    harness
        .create_git(
            "no-match",
            json!({"url": url, "interval": "1h", "ref": {"semver": ">=5.0.0"}}),
        )
        .await?;
    let failed = harness
        .wait_git(
            "no-match",
            "GitOperationFailed",
            git_failed_with("GitOperationFailed"),
        )
        .await?;
    assert!(
        condition(git_conditions(&failed), "Ready")
            .unwrap()
            .message
            .contains("no tag matches")
    );
    harness
        .create_git(
            "missing-branch",
            json!({"url": url, "interval": "1h", "ref": {"branch": "nope"}}),
        )
        .await?;
    harness
        .wait_git(
            "missing-branch",
            "GitOperationFailed",
            git_failed_with("GitOperationFailed"),
        )
        .await?;

    // A commit artifact is immutable: re-reconciling it contacts the server not at all.
    server.create_repo("pin")?;
    let pinned = server.commit("pin", "main", [("p", "p")], "pin")?;
    harness
        .create_git(
            "pinned",
            json!({"url": server.http_url("pin"), "interval": "1h", "ref": {"commit": pinned}}),
        )
        .await?;
    harness.wait_git("pinned", "Ready", git_ready).await?;
    server.clear_requests();
    harness.request_git_reconcile("pinned", "again").await?;
    let to_pin = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/pin.git/"))
        .count();
    assert_eq!(to_pin, 0, "{:#?}", server.requests());
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_rules_sourceignore_and_sparse_checkout() -> Result<()> {
    let harness = Harness::start("git-content").await?;
    let server = GitServer::builder().start()?;
    server.create_repo("app")?;
    server.commit(
        "app",
        "main",
        [
            ("apps/app.yaml", "a"),
            ("apps/notes.md", "n"),
            ("apps/.sourceignore", "*.md\n"),
            ("infra/db.yaml", "d"),
            ("infra/logo.png", "p"),
            ("secret.txt", "s"),
        ],
        "tree",
    )?;
    let url = server.http_url("app");
    harness
        .create_git(
            "sourceignore",
            json!({"url": url, "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    harness
        .create_git("spec-ignore", json!({"url": url, "interval": "1h", "ref": {"branch": "main"}, "ignore": "secret.txt\n/infra/\n"}))
        .await?;
    harness
        .create_git("sparse", json!({"url": url, "interval": "1h", "ref": {"branch": "main"}, "sparseCheckout": ["infra"]}))
        .await?;
    harness
        .create_git("sparse-missing", json!({"url": url, "interval": "1h", "ref": {"branch": "main"}, "sparseCheckout": ["nope"]}))
        .await?;

    let object = harness.wait_git("sourceignore", "Ready", git_ready).await?;
    let artifact = git_artifact(&object)?;
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert!(files.contains_key("apps/app.yaml"));
    assert!(
        !files.contains_key("apps/notes.md"),
        ".sourceignore applies in its directory"
    );
    assert!(
        files.contains_key("infra/logo.png"),
        "a .sourceignore replaces the default exclusions"
    );

    let object = harness.wait_git("spec-ignore", "Ready", git_ready).await?;
    assert_eq!(
        object.status.as_ref().unwrap().observed_ignore.as_deref(),
        Some("secret.txt\n/infra/\n")
    );
    let artifact = git_artifact(&object)?;
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert!(files.contains_key("apps/app.yaml"));
    assert!(!files.contains_key("secret.txt"));
    assert!(!files.keys().any(|k| k.starts_with("infra/")));

    let object = harness.wait_git("sparse", "Ready", git_ready).await?;
    assert_eq!(
        object.status.as_ref().unwrap().observed_sparse_checkout,
        vec!["infra".to_owned()]
    );
    let artifact = git_artifact(&object)?;
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert!(files.contains_key("infra/db.yaml"));
    assert!(!files.contains_key("apps/app.yaml"), "{:?}", files.keys());

    let failed = harness
        .wait_git(
            "sparse-missing",
            "FetchFailed",
            git_failed_with("GitOperationFailed"),
        )
        .await?;
    assert!(has(
        git_conditions(&failed),
        "FetchFailed",
        "True",
        "GitOperationFailed"
    ));

    // Changing spec.ignore re-packs the same revision without a new upstream commit.
    let before = git_artifact(&harness.git_api().get("spec-ignore").await?)?;
    let patch = json!({"spec": {"ignore": "secret.txt\n"}});
    harness
        .git_api()
        .patch(
            "spec-ignore",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let repacked = harness
        .wait_git("spec-ignore", "a re-packed artifact", |o| {
            git_ready(o) && git_artifact(o).is_ok_and(|a| a.digest != before.digest)
        })
        .await?;
    let artifact = git_artifact(&repacked)?;
    assert_eq!(artifact.revision, before.revision);
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert!(files.contains_key("infra/db.yaml"));
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_never_writes_through_a_committed_symlink() -> Result<()> {
    let harness = Harness::start("git-include-link").await?;
    let outside = tempfile::tempdir()?;
    let server = GitServer::builder().start()?;
    server.create_repo("lib")?;
    server.commit("lib", "main", [("pwned.yaml", "written outside")], "lib")?;
    server.create_repo("evil")?;
    server.commit("evil", "main", [("app.yaml", "app")], "app")?;
    let git = GitCli::new()?;
    let work = tempfile::tempdir()?;
    let worktree = work.path().join("evil");
    git.clone_repo(&server.repo_path("evil").display().to_string(), &worktree)?;
    std::os::unix::fs::symlink(outside.path(), worktree.join("link"))?;
    std::fs::create_dir_all(worktree.join("nested"))?;
    std::os::unix::fs::symlink(outside.path(), worktree.join("nested/deeper"))?;
    git.commit_all(&worktree, "links out of the checkout")?;
    git.push(&worktree, "main")?;
    harness
        .create_git(
            "lib",
            json!({"url": server.http_url("lib"), "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    harness.wait_git("lib", "Ready", git_ready).await?;
    for (name, to_path) in [("direct", "link"), ("nested", "nested/deeper/sub")] {
        harness
            .create_git(
                name,
                json!({"url": server.http_url("evil"), "interval": "1h", "ref": {"branch": "main"},
                       "include": [{"repository": {"name": "lib"}, "toPath": to_path}]}),
            )
            .await?;
        let failed = harness
            .wait_git(name, "CopyFailure", git_failed_with("CopyFailure"))
            .await?;
        let ready = condition(git_conditions(&failed), "Ready").unwrap();
        assert!(ready.message.contains("symbolic link"), "{}", ready.message);
    }
    let escaped: Vec<_> = walk_files(outside.path());
    assert!(escaped.is_empty(), "files written outside: {escaped:?}");
    harness.stop().await;
    Ok(())
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_copies_other_artifacts_and_waits_for_missing_ones() -> Result<()> {
    let harness = Harness::start("git-include").await?;
    let server = GitServer::builder().start()?;
    server.create_repo("app")?;
    server.commit("app", "main", [("app.yaml", "app")], "app")?;
    server.create_repo("lib")?;
    server.commit(
        "lib",
        "main",
        [("base/lib.yaml", "lib"), ("other.yaml", "o")],
        "lib",
    )?;
    harness
        .create_git(
            "lib",
            json!({"url": server.http_url("lib"), "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    harness
        .create_git(
            "app",
            json!({"url": server.http_url("app"), "interval": "1h", "ref": {"branch": "main"},
                   "include": [{"repository": {"name": "lib"}, "fromPath": "base", "toPath": "vendor/lib"}]}),
        )
        .await?;
    harness
        .create_git(
            "waiting",
            json!({"url": server.http_url("app"), "interval": "1h", "ref": {"branch": "main"},
                   "include": [{"repository": {"name": "absent"}}]}),
        )
        .await?;
    let app = harness.wait_git("app", "Ready", git_ready).await?;
    let lib = harness.git_api().get("lib").await?;
    let status = app.status.as_ref().unwrap();
    assert_eq!(status.included_artifacts, vec![git_artifact(&lib)?]);
    assert_eq!(status.observed_include.len(), 1);
    let artifact = git_artifact(&app)?;
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert_eq!(
        files.get("vendor/lib/lib.yaml").map(String::as_str),
        Some("lib")
    );
    assert!(files.contains_key("app.yaml"));
    assert!(!files.keys().any(|k| k.contains("other.yaml")));

    let waiting = harness
        .wait_git("waiting", "IncludeUnavailable", |o| {
            has(git_conditions(o), "IncludeUnavailable", "True", "NotFound")
        })
        .await?;
    assert!(has(git_conditions(&waiting), "Ready", "False", "NotFound"));
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_fields_stall_naming_the_field_and_suspend_stops() -> Result<()> {
    let harness = Harness::start("git-stall").await?;
    let server = GitServer::builder().start()?;
    server.create_repo("app")?;
    server.commit("app", "main", [("a", "a")], "a")?;
    harness
        .create_git(
            "azure-provider",
            json!({"url": server.http_url("app"), "interval": "1h", "ref": {"branch": "main"},
                   "provider": "azure"}),
        )
        .await?;
    let stalled = harness
        .wait_git("azure-provider", "Stalled", |o| {
            has(
                git_conditions(o),
                "Stalled",
                "True",
                "InvalidProviderConfiguration",
            )
        })
        .await?;
    assert!(
        condition(git_conditions(&stalled), "Stalled")
            .unwrap()
            .message
            .contains("spec.provider")
    );
    assert!(has(
        git_conditions(&stalled),
        "Ready",
        "False",
        "InvalidProviderConfiguration"
    ));
    assert_eq!(
        stalled.status.as_ref().unwrap().observed_generation,
        stalled.metadata.generation
    );
    assert!(condition(git_conditions(&stalled), "Reconciling").is_none());

    harness
        .create_git(
            "suspended",
            json!({"url": server.http_url("app"), "interval": "1h", "suspend": true}),
        )
        .await?;
    harness
        .wait_git("suspended", "the finalizer", |o| {
            o.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| !f.is_empty())
        })
        .await?;
    let suspended = harness.git_api().get("suspended").await?;
    assert!(
        suspended
            .status
            .as_ref()
            .is_none_or(|s| s.artifact.is_none() && s.conditions.is_empty())
    );
    harness.stop().await;
    Ok(())
}
