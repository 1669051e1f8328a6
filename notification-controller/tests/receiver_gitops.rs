//! A git push announced by a GitHub-style webhook is applied at once: source-controller and
//! kustomize-controller run as processes (polling every 10m, so only the webhook can trigger
//! them), the Receiver reconciler and webhook server in process.
//! Needs the binaries: `cargo build --workspace --bins`.

mod receiver_common;

use std::time::{Duration, Instant};

use anyhow::Result;
use aws_lc_rs::hmac;
use notification_controller::receiver::ReceiverServerOptions;
use receiver_common::Harness;
use serde_json::json;
use sluice_e2e::ControlPlane;
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{APP, AppLoop, Controllers, Scope, app_configmap, main_revision};

const TOKEN: &str = "push-webhook-token";

#[tokio::test]
async fn a_github_push_webhook_gets_the_commit_applied() -> Result<()> {
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("recv-gitops").await?;
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let dir = plane.dir().join(format!("{namespace}-controllers"));
    let scope = Scope::Namespace(namespace.clone());
    let controllers =
        tokio::task::spawn_blocking(move || Controllers::start(&kubeconfig, &dir, scope)).await??;
    let git = GitServer::builder().start()?;
    let app = AppLoop::create(plane, &namespace, &git, "v1", "10m", "10m").await?;
    let first = main_revision(&git.head(APP, "main")?);
    if let Err(state) = app.wait_applied(&first, Duration::from_secs(120)).await {
        panic!("first apply: {state}\n{}", controllers.log_tails());
    }

    let harness = Harness::start_in(&namespace, ReceiverServerOptions::default()).await?;
    harness.secret("webhook-token", &[("token", TOKEN)]).await?;
    let path = harness
        .receiver(
            "github-receiver",
            json!({
                "type": "github",
                "events": ["ping", "push"],
                "secretRef": {"name": "webhook-token"},
                "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": APP}],
            }),
        )
        .await?;

    let sha = git.commit(
        APP,
        "main",
        [("app/configmap.yaml", app_configmap("v2"))],
        "v2",
    )?;
    let second = main_revision(&sha);
    let body =
        json!({"ref": "refs/heads/main", "after": sha, "repository": {"full_name": "org/app"}})
            .to_string();
    let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN.as_bytes());
    let signature = format!("sha256={}", hex::encode(hmac::sign(&key, body.as_bytes())));
    let pushed = Instant::now();
    let status = harness
        .post(
            &path,
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "1"),
                ("X-Hub-Signature-256", &signature),
            ],
            body.as_bytes(),
        )
        .await?;
    assert_eq!(status, 200);
    if let Err(state) = app.wait_applied(&second, Duration::from_secs(60)).await {
        panic!(
            "webhook-triggered apply: {state}\n{}",
            controllers.log_tails()
        );
    }
    eprintln!("webhook → applied in {:?}", pushed.elapsed());
    assert_eq!(app.configmap_message().await?.as_deref(), Some("v2"));
    Ok(())
}
