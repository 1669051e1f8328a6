//! The whole path with every controller as an OS process: our source-controller and
//! kustomize-controller post their events to our notification-controller (`--events-addr`),
//! which delivers them to a local recording server through a generic Provider.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use common::Recorder;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sluice_api::notification::{Alert, Provider};
use sluice_e2e::ControlPlane;
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{AppLoop, Controller, Controllers, Scope};
use sluice_e2e::net::free_port;
use sluice_e2e::poll::eventually;
use sluice_e2e::process::Supervised;

/// The notification-controller binary and its endpoints.
struct Running {
    process: Supervised,
    events: String,
    readyz: String,
    metrics: String,
    receiver: String,
}

/// Starts the notification-controller binary watching `namespace`.
fn start_notification_controller(
    kubeconfig: &Path,
    dir: &Path,
    namespace: &str,
) -> Result<Running> {
    std::fs::create_dir_all(dir)?;
    let events_port = free_port()?;
    let health_port = free_port()?;
    let (metrics_port, receiver_port) = (free_port()?, free_port()?);
    let args = vec![
        format!("--events-addr=127.0.0.1:{events_port}"),
        format!("--receiverAddr=127.0.0.1:{receiver_port}"),
        format!("--metrics-addr=127.0.0.1:{metrics_port}"),
        format!("--health-addr=127.0.0.1:{health_port}"),
        "--watch-all-namespaces=false".to_owned(),
        format!("--runtime-namespace={namespace}"),
        "--log-encoding=console".to_owned(),
    ];
    let binary = Path::new(env!("CARGO_BIN_EXE_notification-controller"));
    let mut process = Supervised::spawn(
        "notification-controller",
        binary,
        &args,
        &[("KUBECONFIG".to_owned(), kubeconfig.display().to_string())],
        &dir.join("notification-controller.log"),
        None,
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = SocketAddr::from(([127, 0, 0, 1], events_port));
    while TcpStream::connect_timeout(&events, Duration::from_millis(200)).is_err() {
        if !process.is_running() || Instant::now() > deadline {
            bail!(
                "notification-controller did not start:\n{}",
                process.log_tail(3000)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Running {
        process,
        events: format!("http://127.0.0.1:{events_port}/"),
        readyz: format!("http://127.0.0.1:{health_port}/readyz"),
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        receiver: format!("http://127.0.0.1:{receiver_port}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_controllers_events_reach_a_provider_through_our_notification_controller() -> Result<()>
{
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("nc-loop").await?;
    let client = plane.client().await?;
    let recorder = Recorder::start().await?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    create_alerts(&client, &namespace, &recorder.url, dead).await?;

    let dir = plane.dir().join(format!("{namespace}-controllers"));
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let Running {
        process: mut notification,
        events: events_url,
        readyz,
        metrics,
        receiver,
    } = start_notification_controller(&kubeconfig, &dir, &namespace)?;
    eventually(
        "notification-controller ready",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            match reqwest::get(&readyz).await {
                Ok(response) if response.status() == 200 => Ok(()),
                Ok(response) => Err(format!("/readyz answered {}", response.status())),
                Err(error) => Err(error.to_string()),
            }
        },
    )
    .await?;
    let scope = Scope::Namespace(namespace.clone());
    let extra = vec![format!("--events-addr={events_url}")];
    let (controller_dir, controller_kubeconfig) = (dir.clone(), kubeconfig.clone());
    let controllers = tokio::task::spawn_blocking(move || {
        Controllers::start_with_args(
            &controller_kubeconfig,
            &controller_dir,
            scope,
            &Controller::ALL,
            &extra,
        )
    })
    .await??;
    let git = GitServer::builder().start()?;
    let app = AppLoop::create(plane, &namespace, &git, "hello", "1m", "1m").await?;

    for (kind, component) in [
        ("GitRepository", "source-controller"),
        ("Kustomization", "kustomize-controller"),
    ] {
        let Some(event) = wait_kind(&recorder, kind).await else {
            bail!(
                "no {kind} event delivered\n{}\n{}\n{}",
                app.describe().await,
                controllers.log_tails(),
                notification.log_tail(3000)
            );
        };
        ensure!(event.method == "POST" && event.path == "/flux");
        ensure!(
            event.headers["gotk-component"] == component,
            "{:?}",
            event.headers
        );
        let body = event.json();
        ensure!(
            body["involvedObject"]["namespace"] == namespace.as_str(),
            "{body}"
        );
        let revision = body["metadata"]["revision"].as_str().unwrap_or_default();
        ensure!(revision.starts_with("main@sha1:"), "{body}");
    }
    // The binary feeds its DORA metrics from the same events and serves webhooks.
    eventually(
        "the DORA deployment of the Kustomization on /metrics",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let text = reqwest::get(&metrics).await.map_err(|e| e.to_string())?;
            let text = text.text().await.map_err(|e| e.to_string())?;
            let deployed = text.lines().any(|line| {
                line.starts_with("sluice_dora_deployments_total{")
                    && line.contains(&format!("namespace=\"{namespace}\""))
            });
            if deployed {
                Ok(())
            } else {
                Err("no sluice_dora_deployments_total line yet".to_owned())
            }
        },
    )
    .await?;
    let unknown_hook = reqwest::Client::new()
        .post(format!("{receiver}/hook/0000"))
        .body("{}")
        .send()
        .await?;
    ensure!(unknown_hook.status() == 404, "{}", unknown_hook.status());
    // The Provider whose address and token come from a Secret fails (nothing listens there):
    // its failure is logged and recorded, never its secrets.
    let log = dir.join("notification-controller.log");
    let logged = eventually(
        "the dispatch failure in the log",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("notification dispatch failed") {
                Ok(text)
            } else {
                Err(format!("{} bytes of log so far", text.len()))
            }
        },
    )
    .await?;
    for secret in [SECRET_TOKEN, "pa55word", &dead.to_string()] {
        ensure!(
            !logged.contains(secret),
            "the log shows {secret:?}:\n{logged}"
        );
    }
    notification.stop();
    Ok(())
}

/// A token that must never appear in logs, events or status.
const SECRET_TOKEN: &str = "tok-8c1f0e2d";

/// A generic Provider at the recorder and a Slack Provider whose Secret address is dead, each
/// with an Alert on every GitRepository and Kustomization.
async fn create_alerts(
    client: &kube::Client,
    namespace: &str,
    recorder: &str,
    dead: SocketAddr,
) -> Result<()> {
    let address = format!("http://user:pa55word@{dead}/hook/{SECRET_TOKEN}");
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "hidden"},
        "stringData": {"address": address, "token": SECRET_TOKEN},
    }))?;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    let providers = [
        (
            "hook",
            json!({"type": "generic", "address": format!("{recorder}/flux")}),
        ),
        (
            "hidden",
            json!({"type": "slack", "secretRef": {"name": "hidden"}}),
        ),
    ];
    for (name, spec) in providers {
        let provider: Provider = serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": name}, "spec": spec,
        }))?;
        let alert: Alert = serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": name},
            "spec": {"providerRef": {"name": name}, "eventSources": [
                {"kind": "GitRepository", "name": "*"}, {"kind": "Kustomization", "name": "*"}]},
        }))?;
        Api::<Provider>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &provider)
            .await?;
        Api::<Alert>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &alert)
            .await?;
    }
    Ok(())
}

/// The first delivered event about an object of `kind` with a revision, waiting up to a minute.
async fn wait_kind(recorder: &Recorder, kind: &str) -> Option<common::Recorded> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = recorder.requests().into_iter().find(|r| {
            let body = r.json();
            body["involvedObject"]["kind"] == kind && body["metadata"]["revision"].is_string()
        });
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
