//! Faults in the GitOps loop: controllers SIGKILLed mid-reconcile and restarted, and a git server
//! outage. Each test runs its own source-controller and kustomize-controller processes, watching
//! only the test's namespace, against the shared control plane in nodes mode.

use std::ffi::OsStr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_e2e::ControlPlane;
use sluice_e2e::git::{GitCli, GitServer};
use sluice_e2e::gitops::{
    self, APP, AppLoop, Controller, Controllers, Scope, app_configmap, main_revision,
    ready_condition,
};
use sluice_e2e::poll::{Timeout, eventually};

const FIRST_APPLY: Duration = Duration::from_secs(120);
const STEP: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
/// ConfigMaps added by the revision during which kustomize-controller is killed.
const EXTRA: usize = 30;

/// The shared control plane, a fresh namespace and controllers watching only that namespace.
async fn setup(prefix: &str) -> (&'static ControlPlane, String, Controllers) {
    let plane = ControlPlane::shared_with_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let namespace = plane.namespace(prefix).await.unwrap();
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let dir = plane.dir().join(format!("controllers-{namespace}"));
    let scope = Scope::Namespace(namespace.clone());
    let controllers =
        tokio::task::spawn_blocking(move || Controllers::start(&kubeconfig, &dir, scope))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
    (plane, namespace, controllers)
}

/// Waits until the GitRepository's artifact has `revision`.
async fn wait_for_artifact(app: &AppLoop, revision: &str) -> Result<(), Timeout> {
    let what = format!("the GitRepository artifact at {revision}");
    eventually(&what, STEP, POLL, || async {
        let repo = app.repositories.get(APP).await.map_err(|e| e.to_string())?;
        let current = repo
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .map(|a| a.revision.clone());
        if current.as_deref() == Some(revision) {
            Ok(())
        } else {
            Err(gitops::describe_git_repository(&repo))
        }
    })
    .await
}

#[tokio::test]
async fn controllers_killed_mid_reconcile_restart_and_converge_without_losing_objects() {
    let (plane, ns, mut controllers) = setup("loop-kill").await;
    let git = GitServer::builder().start().unwrap();
    // Hour-long intervals: the restarts and requestedAt drive every reconcile.
    let app = AppLoop::create(plane, &ns, &git, "v1", "1h", "1h")
        .await
        .unwrap();
    let first = main_revision(&git.head(APP, "main").unwrap());
    app.wait_applied(&first, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected {first} applied; now:\n{state}\n{}",
                controllers.log_tails()
            )
        });

    // source-controller: killed while it fetches from the git server.
    let second = main_revision(
        &git.commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap("v2"))],
            "v2",
        )
        .unwrap(),
    );
    git.clear_requests();
    gitops::request_reconcile(&app.repositories, APP)
        .await
        .unwrap();
    let what = "source-controller to fetch";
    eventually(what, STEP, Duration::from_millis(5), || async {
        if git.upload_pack_posts() > 0 {
            Ok(())
        } else {
            Err("no git-upload-pack request yet".to_string())
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
    controllers.kill(Controller::Source).unwrap();
    controllers.restart(Controller::Source).unwrap();
    wait_for_artifact(&app, &second)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected the restarted source-controller to store {second}; now: {state}\n{}",
                controllers.log_tails()
            )
        });
    app.wait_applied(&second, STEP)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected {second} applied; now:\n{state}\n{}",
                controllers.log_tails()
            )
        });

    // kustomize-controller: killed as soon as the first object of the new revision is applied;
    // EXTRA new ConfigMaps keep it busy applying, so it dies mid-apply.
    let mut files = vec![("app/configmap.yaml".to_string(), app_configmap("v3"))];
    files.extend((0..EXTRA).map(|i| {
        (
            format!("app/extra-{i:02}.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-{i:02}\ndata:\n  added: v3\n"),
        )
    }));
    let third = main_revision(&git.commit(APP, "main", files, "v3").unwrap());
    gitops::request_reconcile(&app.repositories, APP)
        .await
        .unwrap();
    let what = format!("kustomize-controller to start applying {third}");
    eventually(&what, STEP, Duration::from_millis(2), || async {
        match app.configmap_message().await.map_err(|e| e.to_string())? {
            Some(message) if message == "v3" => Ok(()),
            message => Err(format!("ConfigMap message {message:?}")),
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
    controllers.kill(Controller::Kustomize).unwrap();
    let at_kill = app.kustomizations.get(APP).await.unwrap();
    eprintln!(
        "kustomize-controller killed at: {}",
        gitops::describe_kustomization(&at_kill)
    );
    controllers.restart(Controller::Kustomize).unwrap();
    let ks = app
        .wait_applied(&third, STEP)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected the restarted kustomize-controller to apply {third}; now:\n{state}\n{}",
                controllers.log_tails()
            )
        });

    let inventory = ks.status.unwrap().inventory.unwrap();
    assert_eq!(inventory.entries.len(), 3 + EXTRA, "{inventory:?}");
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v3")
    );
    let configmaps = app.api::<ConfigMap>();
    for i in 0..EXTRA {
        let name = format!("extra-{i:02}");
        assert!(
            configmaps.get_opt(&name).await.unwrap().is_some(),
            "ConfigMap {name} is missing"
        );
    }
    assert!(app.api::<Service>().get_opt(APP).await.unwrap().is_some());
    let deployment = app.api::<Deployment>().get(APP).await.unwrap();
    assert!(
        deployment.metadata.deletion_timestamp.is_none(),
        "{deployment:?}"
    );
}

#[tokio::test]
async fn git_outage_keeps_the_last_artifact_and_objects_then_catches_up() {
    let (plane, ns, controllers) = setup("loop-outage").await;
    let git = GitServer::builder().start().unwrap();
    let app = AppLoop::create(plane, &ns, &git, "v1", "1h", "1h")
        .await
        .unwrap();
    let first = main_revision(&git.head(APP, "main").unwrap());
    app.wait_applied(&first, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected {first} applied; now:\n{state}\n{}",
                controllers.log_tails()
            )
        });
    let artifact = app
        .repositories
        .get(APP)
        .await
        .unwrap()
        .status
        .unwrap()
        .artifact
        .unwrap();

    // Keep a copy of the repository, then stop the server (its repositories go with it).
    let backup = tempfile::tempdir().unwrap();
    let cli = GitCli::new().unwrap();
    let mirror = backup.path().join("app.git");
    cli.run(
        None,
        [
            OsStr::new("clone"),
            OsStr::new("--quiet"),
            OsStr::new("--mirror"),
            git.repo_path(APP).as_os_str(),
            mirror.as_os_str(),
        ],
    )
    .unwrap();
    drop(git);

    let token = gitops::request_reconcile(&app.repositories, APP)
        .await
        .unwrap();
    let what = "Ready=False after a fetch from the stopped git server";
    let repo = eventually(what, STEP, POLL, || async {
        let repo = app.repositories.get(APP).await.map_err(|e| e.to_string())?;
        let status = repo.status.clone().unwrap_or_default();
        let failed = ready_condition(&status.conditions).is_some_and(|c| c.status == "False");
        if failed && status.last_handled_reconcile_at.as_deref() == Some(token.as_str()) {
            Ok(repo)
        } else {
            Err(gitops::describe_git_repository(&repo))
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}\n{}", controllers.log_tails()));
    assert_eq!(
        repo.status.unwrap().artifact.as_ref(),
        Some(&artifact),
        "the last artifact stays in status"
    );
    let body = reqwest::get(&artifact.url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap_or_else(|e| panic!("expected the last artifact served at {}: {e}", artifact.url))
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&body))),
        artifact.digest,
        "served artifact matches its digest"
    );
    let token = gitops::request_reconcile(&app.kustomizations, APP)
        .await
        .unwrap();
    let what = format!("the Kustomization to handle {token}");
    let ks = eventually(&what, STEP, POLL, || async {
        let ks = app
            .kustomizations
            .get(APP)
            .await
            .map_err(|e| e.to_string())?;
        let handled = ks
            .status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.clone());
        if handled.as_deref() == Some(token.as_str()) {
            Ok(ks)
        } else {
            Err(gitops::describe_kustomization(&ks))
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
    assert!(
        gitops::kustomization_ready_at(&ks, &first),
        "the Kustomization stays Ready at {first} during the outage: {}",
        gitops::describe_kustomization(&ks)
    );
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v1")
    );
    assert!(app.api::<Service>().get_opt(APP).await.unwrap().is_some());
    assert!(
        app.api::<Deployment>()
            .get_opt(APP)
            .await
            .unwrap()
            .is_some()
    );

    // A new server (GitServer has no restart) with the same history plus a new commit; the
    // GitRepository is pointed at it.
    let git = GitServer::builder().start().unwrap();
    cli.run(
        None,
        [
            OsStr::new("clone"),
            OsStr::new("--quiet"),
            OsStr::new("--bare"),
            mirror.as_os_str(),
            git.repo_path(APP).as_os_str(),
        ],
    )
    .unwrap();
    let second = main_revision(
        &git.commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap("v2"))],
            "v2",
        )
        .unwrap(),
    );
    app.repositories
        .patch(
            APP,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"url": git.http_url(APP)}})),
        )
        .await
        .unwrap();
    wait_for_artifact(&app, &second)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected {second} fetched once the git server is back; now: {state}\n{}",
                controllers.log_tails()
            )
        });
    app.wait_applied(&second, STEP)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected {second} applied; now:\n{state}\n{}",
                controllers.log_tails()
            )
        });
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v2")
    );
}
