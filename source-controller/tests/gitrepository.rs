//! GitRepository end to end: real API server, real git server, in-process controller.

mod common;

use anyhow::Result;
use common::{
    Harness, POLL, WAIT, condition, git_artifact, git_conditions, git_failed_with, git_ready, has,
};
use serde_json::json;
use sluice_e2e::git::GitServer;
use sluice_e2e::poll::eventually;

fn seeded(server: &GitServer, repo: &str) -> String {
    server.create_repo(repo).unwrap();
    server
        .commit(
            repo,
            "main",
            [
                ("deploy/app.yaml", "kind: ConfigMap\n"),
                ("logo.png", "binary"),
                (".github/workflows/ci.yaml", "on: push\n"),
                ("README.md", "hello\n"),
            ],
            "first commit",
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_artifact_status_events_no_change_gc_and_delete() -> Result<()> {
    let harness = Harness::start("git-main").await?;
    let server = GitServer::builder().start()?;
    let first = seeded(&server, "app");
    harness
        .create_git(
            "app",
            json!({"url": server.http_url("app"), "interval": "1h", "ref": {"branch": "main"}}),
        )
        .await?;
    let ready = harness.wait_git("app", "Ready", git_ready).await?;
    // No artifact yet: the ref is fetched in process without listing refs first (the v0
    // advertisement, one shallow pack).
    assert_eq!(server.fetches(), 1, "{:#?}", server.requests());
    assert_eq!(server.requests().len(), 2, "{:#?}", server.requests());

    let artifact = git_artifact(&ready)?;
    let revision = format!("main@sha1:{first}");
    assert_eq!(artifact.revision, revision);
    let hex = artifact
        .digest
        .strip_prefix("sha256:")
        .expect("sha256 digest");
    assert_eq!(
        artifact.path,
        format!("gitrepository/{}/app/{hex}.tar.gz", harness.namespace)
    );
    assert_eq!(
        artifact.url,
        format!("http://{}/{}", harness.server_address, artifact.path)
    );
    let conditions = git_conditions(&ready);
    let message = format!("stored artifact for revision '{revision}'");
    assert_eq!(condition(conditions, "Ready").unwrap().message, message);
    assert!(has(conditions, "ArtifactInStorage", "True", "Succeeded"));
    for absent in ["Reconciling", "Stalled", "FetchFailed", "ArtifactOutdated"] {
        assert!(
            condition(conditions, absent).is_none(),
            "{absent} must be absent: {conditions:?}"
        );
    }
    assert_eq!(
        ready.metadata.finalizers,
        Some(vec!["finalizers.fluxcd.io".to_owned()])
    );
    let status = ready.status.as_ref().unwrap();
    assert_eq!(status.observed_ignore, None);

    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert_eq!(
        files.get("deploy/app.yaml").map(String::as_str),
        Some("kind: ConfigMap\n")
    );
    assert!(files.contains_key("README.md"));
    assert!(
        !files.contains_key("logo.png"),
        "default exclusions drop images"
    );
    assert!(
        !files.keys().any(|k| k.starts_with(".github")),
        "default exclusions drop .github"
    );
    assert!(!files.keys().any(|k| k.starts_with(".git/")));
    let reasons = harness.event_reasons("app").await?;
    assert!(reasons.iter().any(|r| r == "NewArtifact"), "{reasons:?}");

    // Unchanged upstream: one ls-remote, a single protocol-v0 advertisement GET; no pack.
    server.clear_requests();
    let unchanged = harness.request_git_reconcile("app", "t1").await?;
    assert_eq!(git_artifact(&unchanged)?, artifact);
    assert!(git_ready(&unchanged));
    assert_eq!(server.fetches(), 0, "{:#?}", server.requests());
    assert_eq!(server.upload_pack_posts(), 0, "{:#?}", server.requests());
    assert_eq!(server.requests().len(), 1, "{:#?}", server.requests());

    // New commits: new artifacts; GC keeps the two newest.
    let mut paths = vec![artifact.path.clone()];
    for round in 2..=3 {
        let sha = server.commit(
            "app",
            "main",
            [("deploy/app.yaml", format!("round: {round}\n"))],
            "change",
        )?;
        server.clear_requests();
        let updated = harness
            .request_git_reconcile("app", &format!("t{round}"))
            .await?;
        let new_artifact = git_artifact(&updated)?;
        assert_eq!(new_artifact.revision, format!("main@sha1:{sha}"));
        assert_eq!(
            server.fetches(),
            1,
            "one shallow fetch: {:#?}",
            server.requests()
        );
        // The listing GET, then the listed commit fetched in process (advertisement, pack).
        assert_eq!(server.requests().len(), 3, "{:#?}", server.requests());
        let files = harness
            .fetch_artifact(&new_artifact.url, &new_artifact.digest)
            .await?;
        assert_eq!(files["deploy/app.yaml"], format!("round: {round}\n"));
        paths.push(new_artifact.path);
    }
    let dir = harness
        .storage_root()
        .join(format!("gitrepository/{}/app", harness.namespace));
    let mut stored: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| {
            e.map(|e| {
                format!(
                    "gitrepository/{}/app/{}",
                    harness.namespace,
                    e.file_name().to_string_lossy()
                )
            })
        })
        .collect::<Result<_, _>>()?;
    stored.sort();
    let mut expected = paths[1..].to_vec();
    expected.sort();
    assert_eq!(stored, expected, "GC keeps the newest two artifacts");

    // Delete: finalizer removes storage, then the object goes.
    harness.delete_git("app").await?;
    let api = harness.git_api();
    eventually("the GitRepository to be deleted", WAIT, POLL, || async {
        match api.get_opt("app").await {
            Ok(None) => Ok(Ok(())),
            Ok(Some(object)) => Err(format!("finalizers {:?}", object.metadata.finalizers)),
            Err(error) => Ok(Err(error)),
        }
    })
    .await??;
    assert!(!dir.exists(), "storage directory removed on delete");
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_repository_reports_fetch_failed() -> Result<()> {
    let harness = Harness::start("git-empty").await?;
    let server = GitServer::builder().start()?;
    server.create_repo("empty")?;
    harness
        .create_git(
            "empty",
            json!({"url": server.http_url("empty"), "interval": "1h"}),
        )
        .await?;
    let failed = harness
        .wait_git(
            "empty",
            "EmptyGitRepository",
            git_failed_with("EmptyGitRepository"),
        )
        .await?;
    let conditions = git_conditions(&failed);
    assert!(has(conditions, "FetchFailed", "True", "EmptyGitRepository"));
    assert!(has(
        conditions,
        "Reconciling",
        "True",
        "ProgressingWithRetry"
    ));
    assert!(failed.status.as_ref().unwrap().artifact.is_none());
    harness.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_keeps_serving_the_last_artifact() -> Result<()> {
    let harness = Harness::start("git-down").await?;
    let server = GitServer::builder().start()?;
    seeded(&server, "app");
    let url = server.http_url("app");
    harness
        .create_git(
            "app",
            json!({"url": url, "interval": "1h", "ref": {"branch": "main"}, "timeout": "5s"}),
        )
        .await?;
    let ready = harness.wait_git("app", "Ready", git_ready).await?;
    let artifact = git_artifact(&ready)?;
    drop(server);
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "down"}}});
    harness
        .git_api()
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let failed = harness
        .wait_git(
            "app",
            "Ready=False GitOperationFailed",
            git_failed_with("GitOperationFailed"),
        )
        .await?;
    let conditions = git_conditions(&failed);
    assert!(has(conditions, "FetchFailed", "True", "GitOperationFailed"));
    assert!(has(conditions, "ArtifactInStorage", "True", "Succeeded"));
    assert_eq!(git_artifact(&failed)?, artifact);
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert!(files.contains_key("deploy/app.yaml"));
    harness.stop().await;
    Ok(())
}
