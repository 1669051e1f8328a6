//! `spec.recurseSubmodules`: submodule content in the artifact, fetched with the parent's
//! credentials on the same host, and `observedRecurseSubmodules`.

mod common;

use anyhow::Result;
use common::{Harness, git_artifact, git_ready};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::git::{GitCli, GitServer};

/// Adds `lib` at `lib_commit` as a submodule (by its http URL) to `main` of `app`; returns the SHA.
fn add_submodule(server: &GitServer, lib_commit: &str) -> Result<String> {
    let modules = format!(
        "[submodule \"lib\"]\n\tpath = lib\n\turl = {}\n",
        server.http_url("lib")
    );
    server.commit(
        "app",
        "main",
        [
            ("app.yaml", "kind: App\n"),
            (".gitmodules", modules.as_str()),
        ],
        "app",
    )?;
    let git = GitCli::new()?;
    let work = tempfile::tempdir()?;
    let dir = work.path().join("app");
    git.clone_repo(&server.repo_path("app").display().to_string(), &dir)?;
    let gitlink = format!("160000,{lib_commit},lib");
    git.run(
        Some(&dir),
        ["update-index", "--add", "--cacheinfo", &gitlink],
    )?;
    git.run(Some(&dir), ["commit", "-q", "-m", "add lib submodule"])?;
    git.push(&dir, "HEAD:refs/heads/main")?;
    Ok(git
        .run(Some(&dir), ["rev-parse", "HEAD"])?
        .trim()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submodules_are_fetched_with_the_parent_credentials() -> Result<()> {
    let harness = Harness::start("git-submodules").await?;
    let server = GitServer::builder()
        .basic_auth("flux", "sub-m0dule-pw")
        .start()?;
    server.create_repo("lib")?;
    let lib_commit = server.commit("lib", "main", [("lib.txt", "from lib\n")], "lib")?;
    server.create_repo("app")?;
    let app_commit = add_submodule(&server, &lib_commit)?;
    harness
        .create_secret(
            "creds",
            &[("username", "flux"), ("password", "sub-m0dule-pw")],
        )
        .await?;
    let spec = |recurse: bool| {
        json!({"url": server.http_url("app"), "interval": "1h", "timeout": "20s",
               "ref": {"branch": "main"}, "secretRef": {"name": "creds"},
               "recurseSubmodules": recurse})
    };
    harness.create_git("with", spec(true)).await?;
    harness.create_git("without", spec(false)).await?;

    let with = harness.wait_git("with", "Ready", git_ready).await?;
    let artifact = git_artifact(&with)?;
    assert_eq!(artifact.revision, format!("main@sha1:{app_commit}"));
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert_eq!(
        files.get("lib/lib.txt").map(String::as_str),
        Some("from lib\n")
    );
    assert_eq!(
        files.get("app.yaml").map(String::as_str),
        Some("kind: App\n")
    );
    assert!(
        with.status
            .as_ref()
            .is_some_and(|s| s.observed_recurse_submodules)
    );
    let lib_fetches = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/lib.git/") && r.is_fetch())
        .collect::<Vec<_>>();
    assert!(
        lib_fetches.iter().any(|r| r.status == 200),
        "the submodule was fetched with the parent's credentials: {lib_fetches:?}"
    );

    let without = harness.wait_git("without", "Ready", git_ready).await?;
    let plain = git_artifact(&without)?;
    let files = harness.fetch_artifact(&plain.url, &plain.digest).await?;
    assert!(!files.contains_key("lib/lib.txt"), "{files:?}");
    assert!(
        without
            .status
            .as_ref()
            .is_some_and(|s| !s.observed_recurse_submodules)
    );

    // Turning submodules on rebuilds the artifact for the same revision.
    let patch = json!({"spec": {"recurseSubmodules": true}});
    harness
        .git_api()
        .patch("without", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let rebuilt = harness
        .wait_git("without", "the submodule artifact", |o| {
            git_ready(o)
                && o.status
                    .as_ref()
                    .is_some_and(|s| s.observed_recurse_submodules)
        })
        .await?;
    let artifact = git_artifact(&rebuilt)?;
    assert_eq!(artifact.revision, plain.revision);
    assert_ne!(artifact.digest, plain.digest);
    let files = harness
        .fetch_artifact(&artifact.url, &artifact.digest)
        .await?;
    assert_eq!(
        files.get("lib/lib.txt").map(String::as_str),
        Some("from lib\n")
    );
    harness.stop().await;
    Ok(())
}
