//! The GitOps loop with source-controller and kustomize-controller as OS processes, against the
//! real control plane in nodes mode and a real git server: apply, update, prune, build errors,
//! drift and the requestedAt handshake. The controllers are shared by this binary's tests.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sluice_e2e::ControlPlane;
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{
    self, APP, AppLoop, Controllers, Scope, app_configmap, main_revision, ready_condition,
};
use sluice_e2e::poll::eventually;
use tokio::sync::OnceCell;

/// First apply, including pods scheduled on the fake node and the Deployment becoming Available.
const FIRST_APPLY: Duration = Duration::from_secs(120);
/// Any later step of the loop.
const STEP: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

static CONTROLLERS: OnceCell<Controllers> = OnceCell::const_new();

/// The shared control plane and controllers, a fresh namespace and a git server.
async fn setup(prefix: &str) -> (&'static ControlPlane, String, GitServer) {
    let plane = ControlPlane::shared_with_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    CONTROLLERS
        .get_or_init(|| async {
            let kubeconfig = plane.kubeconfig_path().to_path_buf();
            let dir = plane.dir().join("loop-reconcile-controllers");
            tokio::task::spawn_blocking(move || {
                Controllers::start(&kubeconfig, &dir, Scope::AllNamespaces)
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .await;
    let namespace = plane.namespace(prefix).await.unwrap();
    let git = GitServer::builder().start().unwrap();
    (plane, namespace, git)
}

fn logs() -> String {
    CONTROLLERS
        .get()
        .map(Controllers::log_tails)
        .unwrap_or_default()
}

fn deployment_available(deployment: &Deployment) -> bool {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

#[tokio::test]
async fn git_repository_and_kustomization_apply_the_app_and_the_deployment_becomes_available() {
    let (plane, ns, git) = setup("loop-apply").await;
    let app = AppLoop::create(plane, &ns, &git, "v1", "1m", "10m")
        .await
        .unwrap();
    let revision = main_revision(&git.head(APP, "main").unwrap());

    let ks = app
        .wait_applied(&revision, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected Kustomization Ready with {revision}; now:\n{state}\n{}",
                logs()
            )
        });
    let artifact = app.repositories.get(APP).await.unwrap().status.unwrap();
    assert_eq!(
        artifact.artifact.map(|a| a.revision).as_deref(),
        Some(revision.as_str()),
        "GitRepository artifact revision"
    );
    let status = ks.status.unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(revision.as_str())
    );
    assert_eq!(status.inventory.map(|i| i.entries.len()), Some(3));

    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v1")
    );
    let service = app.api::<Service>().get(APP).await.unwrap();
    let labels = service.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some(APP)
    );
    let deployments = app.api::<Deployment>();
    let what = format!("Deployment {APP} Available");
    eventually(&what, FIRST_APPLY, POLL, || async {
        let deployment = deployments.get(APP).await.map_err(|e| e.to_string())?;
        if deployment_available(&deployment) {
            Ok(())
        } else {
            Err(format!("{:?}", deployment.status))
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
}

#[tokio::test]
async fn a_pushed_change_is_applied_and_a_deleted_file_is_pruned() {
    let (plane, ns, git) = setup("loop-push").await;
    let app = AppLoop::create(plane, &ns, &git, "v1", "2s", "10m")
        .await
        .unwrap();
    let first = main_revision(&git.head(APP, "main").unwrap());
    app.wait_applied(&first, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| panic!("expected {first} applied; now:\n{state}\n{}", logs()));

    let sha = git
        .commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap("v2"))],
            "v2",
        )
        .unwrap();
    let second = main_revision(&sha);
    app.wait_applied(&second, STEP)
        .await
        .unwrap_or_else(|state| {
            panic!(
                "expected the pushed {second} applied by polling; now:\n{state}\n{}",
                logs()
            )
        });
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v2")
    );

    let sha = git
        .delete(APP, "main", &["app/service.yaml"], "drop the Service")
        .unwrap();
    let third = main_revision(&sha);
    let ks = app
        .wait_applied(&third, STEP)
        .await
        .unwrap_or_else(|state| panic!("expected {third} applied; now:\n{state}\n{}", logs()));
    let services = app.api::<Service>();
    let what = format!("Service {APP} pruned");
    eventually(&what, STEP, POLL, || async {
        match services.get_opt(APP).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(service) => Err(format!(
                "Service still exists (deletionTimestamp {:?})",
                service.metadata.deletion_timestamp
            )),
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
    let inventory = ks.status.unwrap().inventory.unwrap();
    assert_eq!(inventory.entries.len(), 2, "{inventory:?}");
    assert!(
        inventory
            .entries
            .iter()
            .all(|e| !e.id.ends_with("_Service")),
        "{inventory:?}"
    );
    assert!(
        app.api::<Deployment>()
            .get_opt(APP)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn broken_yaml_fails_naming_the_file_prunes_nothing_and_recovers_when_fixed() {
    let (plane, ns, git) = setup("loop-broken").await;
    let app = AppLoop::create(plane, &ns, &git, "v1", "2s", "10m")
        .await
        .unwrap();
    let first = main_revision(&git.head(APP, "main").unwrap());
    app.wait_applied(&first, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| panic!("expected {first} applied; now:\n{state}\n{}", logs()));

    // Break the ConfigMap, then delete the Service: a controller that pruned after a failed
    // build would delete the Service.
    git.commit(
        APP,
        "main",
        [(
            "app/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata: {message: [unclosed\n",
        )],
        "break the ConfigMap",
    )
    .unwrap();
    let broken = main_revision(
        &git.delete(APP, "main", &["app/service.yaml"], "drop the Service")
            .unwrap(),
    );
    let what = format!("Ready=False after attempting {broken}");
    let ks = eventually(&what, STEP, POLL, || async {
        let ks = app
            .kustomizations
            .get(APP)
            .await
            .map_err(|e| e.to_string())?;
        let status = ks.status.clone().unwrap_or_default();
        let failed = ready_condition(&status.conditions).is_some_and(|c| c.status == "False");
        if failed && status.last_attempted_revision.as_deref() == Some(broken.as_str()) {
            Ok(ks)
        } else {
            Err(app.describe().await)
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}\n{}", logs()));
    let status = ks.status.unwrap();
    let ready = ready_condition(&status.conditions).unwrap();
    assert!(
        ready.message.contains("configmap.yaml"),
        "the message should name the broken file: {ready:?}"
    );
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(first.as_str()),
        "the last applied revision stays"
    );
    assert!(
        app.api::<Service>().get_opt(APP).await.unwrap().is_some(),
        "nothing is pruned after a failed build"
    );
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v1")
    );

    let fixed = main_revision(
        &git.commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap("fixed"))],
            "fix the ConfigMap",
        )
        .unwrap(),
    );
    app.wait_applied(&fixed, STEP)
        .await
        .unwrap_or_else(|state| panic!("expected recovery at {fixed}; now:\n{state}\n{}", logs()));
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("fixed")
    );
    let services = app.api::<Service>();
    let what = "the deleted Service pruned once fixed";
    eventually(what, STEP, POLL, || async {
        match services.get_opt(APP).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("Service still exists".to_string()),
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
}

#[tokio::test]
async fn a_change_by_hand_is_corrected() {
    let (plane, ns, git) = setup("loop-drift").await;
    // Intervals of an hour: only drift detection can correct the change within the test.
    let app = AppLoop::create(plane, &ns, &git, "v1", "1h", "1h")
        .await
        .unwrap();
    let first = main_revision(&git.head(APP, "main").unwrap());
    app.wait_applied(&first, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| panic!("expected {first} applied; now:\n{state}\n{}", logs()));

    let by_hand = PatchParams {
        field_manager: Some("kubectl-edit".to_string()),
        ..Default::default()
    };
    app.api::<ConfigMap>()
        .patch(
            APP,
            &by_hand,
            &Patch::Merge(json!({"data": {"message": "edited by hand"}})),
        )
        .await
        .unwrap();
    app.api::<Deployment>()
        .patch(
            APP,
            &by_hand,
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();

    let deployments = app.api::<Deployment>();
    let what = "the hand edits reverted (message v1, 1 replica)";
    let corrected = eventually(what, STEP, POLL, || async {
        let message = app.configmap_message().await.map_err(|e| e.to_string())?;
        let replicas = deployments
            .get(APP)
            .await
            .map_err(|e| e.to_string())?
            .spec
            .and_then(|s| s.replicas);
        if message.as_deref() == Some("v1") && replicas == Some(1) {
            Ok(())
        } else {
            Err(format!(
                "ConfigMap message {message:?}, Deployment replicas {replicas:?}"
            ))
        }
    })
    .await;
    if let Err(timeout) = corrected {
        panic!("{timeout}\n{}\n{}", app.describe().await, logs());
    }
}

#[tokio::test]
async fn requested_at_reconciles_at_once() {
    let (plane, ns, git) = setup("loop-requested").await;
    let app = AppLoop::create(plane, &ns, &git, "v1", "1h", "1h")
        .await
        .unwrap();
    let first = main_revision(&git.head(APP, "main").unwrap());
    app.wait_applied(&first, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| panic!("expected {first} applied; now:\n{state}\n{}", logs()));

    let second = main_revision(
        &git.commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap("v2"))],
            "v2",
        )
        .unwrap(),
    );
    let token = gitops::request_reconcile(&app.repositories, APP)
        .await
        .unwrap();
    let what = format!("GitRepository to handle {token} and store {second}");
    eventually(&what, STEP, POLL, || async {
        let repo = app.repositories.get(APP).await.map_err(|e| e.to_string())?;
        let status = repo.status.clone().unwrap_or_default();
        let revision = status.artifact.map(|a| a.revision);
        if status.last_handled_reconcile_at.as_deref() == Some(token.as_str())
            && revision.as_deref() == Some(second.as_str())
        {
            Ok(())
        } else {
            Err(format!(
                "lastHandledReconcileAt {:?}; {}",
                status.last_handled_reconcile_at,
                gitops::describe_git_repository(&repo)
            ))
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}\n{}", logs()));
    app.wait_applied(&second, STEP)
        .await
        .unwrap_or_else(|state| panic!("expected {second} applied; now:\n{state}\n{}", logs()));
    assert_eq!(
        app.configmap_message().await.unwrap().as_deref(),
        Some("v2")
    );

    let token = gitops::request_reconcile(&app.kustomizations, APP)
        .await
        .unwrap();
    let what = format!("Kustomization to handle {token}");
    eventually(&what, STEP, POLL, || async {
        let ks = app
            .kustomizations
            .get(APP)
            .await
            .map_err(|e| e.to_string())?;
        let handled = ks.status.and_then(|s| s.last_handled_reconcile_at);
        if handled.as_deref() == Some(token.as_str()) {
            Ok(())
        } else {
            Err(format!("Kustomization lastHandledReconcileAt {handled:?}"))
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}\n{}", logs()));
}
