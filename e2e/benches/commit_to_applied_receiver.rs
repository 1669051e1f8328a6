//! Commit-to-applied latency driven by a real Receiver: source-, kustomize- and
//! notification-controller as processes; after each push a GitHub-style push webhook, signed
//! with the Receiver's token, is posted to the notification-controller's webhook server, which
//! annotates the GitRepository. Times the webhook answer, the artifact and the new ConfigMap value
//! in the cluster from the end of `git push`. Prints p50/p95 over 50 pushes.
//!
//! `cargo build -p source-controller -p kustomize-controller -p notification-controller`, then
//! `cargo bench -p sluice-e2e --bench commit_to_applied_receiver` (`--release` for both alike).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use aws_lc_rs::hmac;
use serde_json::json;
use sluice_e2e::bench::{Percentiles, sibling_binary};
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{APP, AppLoop, Controllers, Scope, app_configmap, main_revision};
use sluice_e2e::net::{free_port, wait_for_port};
use sluice_e2e::poll::eventually;
use sluice_e2e::process::Supervised;
use sluice_e2e::toolkit::{apply_manifest, dynamic_api};
use sluice_e2e::{ControlPlane, Mode};

const PUSHES: usize = 50;
const POLL: Duration = Duration::from_millis(5);
const TIMEOUT: Duration = Duration::from_secs(60);
const TOKEN: &str = "bench-webhook-token";

/// One latency of a [`Sample`].
type Field = fn(&Sample) -> Duration;

/// Latencies of one push, measured from the end of `git push`.
struct Sample {
    answered: Duration,
    stored: Duration,
    applied: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nc_binary = sibling_binary("notification-controller")?;
    eprintln!("using {}", nc_binary.display());
    let profile = nc_binary
        .parent()
        .and_then(|dir| dir.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    eprintln!("starting the control plane (etcd + kube-apiserver)...");
    let plane = ControlPlane::start(Mode::ApiOnly).await?;
    plane.install_crds().await?;
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let dir = plane.dir().join("controllers");
    let controllers = tokio::task::spawn_blocking(move || {
        Controllers::start(&kubeconfig, &dir, Scope::AllNamespaces)
    })
    .await??;
    let namespace = plane.namespace("bench").await?;
    let (_receiver_process, webhook_url) = start_receiver(
        &nc_binary,
        plane.kubeconfig_path(),
        &plane.dir().join("nc"),
        &namespace,
    )?;
    let git = GitServer::builder().start()?;
    let app = AppLoop::create(&plane, &namespace, &git, "push-0", "1h", "1h").await?;
    let first = main_revision(&git.head(APP, "main")?);
    app.wait_applied(&first, Duration::from_secs(120))
        .await
        .map_err(|state| anyhow!("the first revision was not applied: {state}"))?;
    let hook = format!("{webhook_url}{}", receiver(&app.client, &namespace).await?);
    let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;

    let mut samples = Vec::with_capacity(PUSHES);
    for push in 1..=PUSHES {
        let message = format!("push-{push}");
        let sha = git.commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap(&message))],
            &message,
        )?;
        let revision = main_revision(&sha);
        let pushed = Instant::now();
        let body =
            json!({"ref": "refs/heads/main", "after": sha, "repository": {"full_name": "org/app"}})
                .to_string();
        let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN.as_bytes());
        let signature = format!("sha256={}", hex::encode(hmac::sign(&key, body.as_bytes())));
        let status = http
            .post(&hook)
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", push.to_string())
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
            .await?
            .status();
        let answered = pushed.elapsed();
        ensure!(status.is_success(), "webhook {push} answered {status}");
        let (stored, applied) = app
            .time_until_applied(&revision, &message, pushed, TIMEOUT, POLL)
            .await
            .map_err(|timeout| anyhow!("{timeout}\n{}", controllers.log_tails()))?;
        app.wait_applied(&revision, TIMEOUT)
            .await
            .map_err(|state| anyhow!("{revision} not in the Kustomization status: {state}"))?;
        samples.push(Sample {
            answered,
            stored,
            applied,
        });
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "commit-to-applied through a GitHub Receiver over {PUSHES} pushes ({cores} cores, {profile} controllers, poll {POLL:?}):"
    );
    let rows: [(&str, Field); 3] = [
        ("webhook answered (requestedAt written)", |s| s.answered),
        ("artifact stored (GitRepository status)", |s| s.stored),
        ("applied (ConfigMap value in the cluster)", |s| s.applied),
    ];
    for (what, field) in rows {
        println!(
            "  {what:<42} {}",
            Percentiles::of(samples.iter().map(field))
        );
    }
    drop(controllers);
    Ok(())
}

/// The notification-controller binary watching `namespace`; returns it and its webhook URL.
fn start_receiver(
    binary: &Path,
    kubeconfig: &Path,
    dir: &Path,
    namespace: &str,
) -> anyhow::Result<(Supervised, String)> {
    std::fs::create_dir_all(dir)?;
    let receiver = free_port()?;
    let args = vec![
        "--watch-all-namespaces=false".to_owned(),
        format!("--runtime-namespace={namespace}"),
        "--log-encoding=console".to_owned(),
        format!("--events-addr=127.0.0.1:{}", free_port()?),
        format!("--receiverAddr=127.0.0.1:{receiver}"),
        format!("--metrics-addr=127.0.0.1:{}", free_port()?),
        format!("--health-addr=127.0.0.1:{}", free_port()?),
    ];
    let env = [("KUBECONFIG".to_owned(), kubeconfig.display().to_string())];
    let log = dir.join("notification-controller.log");
    let mut process =
        Supervised::spawn("notification-controller", binary, &args, &env, &log, None)?;
    ensure!(
        wait_for_port(receiver, Duration::from_secs(60)) && process.is_running(),
        "notification-controller did not start:\n{}",
        process.log_tail(3000)
    );
    Ok((process, format!("http://127.0.0.1:{receiver}")))
}

/// The token Secret and a GitHub Receiver for the `app` GitRepository; returns its webhook path.
async fn receiver(client: &kube::Client, namespace: &str) -> anyhow::Result<String> {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "webhook-token"},
        "stringData": {"token": TOKEN}});
    apply_manifest(client, namespace, &secret).await?;
    let receiver = json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "github"},
        "spec": {"type": "github", "events": ["ping", "push"], "secretRef": {"name": "webhook-token"},
                 "resources": [{"kind": "GitRepository", "name": APP}]}});
    apply_manifest(client, namespace, &receiver).await?;
    let api = dynamic_api(
        client,
        namespace,
        "notification.toolkit.fluxcd.io/v1",
        "Receiver",
    );
    let path = eventually(
        "the Receiver's webhook path",
        TIMEOUT,
        POLL * 20,
        || async {
            let receiver = api.get("github").await.map_err(|e| e.to_string())?;
            receiver.data["status"]["webhookPath"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "no webhookPath yet".to_owned())
        },
    )
    .await
    .context("the Receiver did not become Ready")?;
    Ok(path)
}
