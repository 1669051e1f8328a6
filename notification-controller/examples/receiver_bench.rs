//! Webhook → `requestedAt` latency: signed GitHub push webhooks, one after another, to the
//! in-process webhook server against the real apiserver; for each, the time until a watch on
//! the GitRepository sees the new `reconcile.fluxcd.io/requestedAt`, and the HTTP round trip.
//! Prints p50/p90/p95/max of both.
//!
//! `cargo run -p notification-controller --example receiver-bench -- --requests 200`

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use aws_lc_rs::hmac;
use clap::Parser;
use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_api::notification::Receiver;
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::Percentiles;
use sluice_e2e::poll::wait_object;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};
use tokio::sync::mpsc;

const TOKEN: &str = "bench-token";

/// Benchmark the webhook receiver.
#[derive(Debug, Parser)]
struct Args {
    /// Webhooks to send, one after another.
    #[arg(long, default_value_t = 200)]
    requests: usize,
}

/// The controller's runtime flags, scoped to the bench namespace.
#[derive(Parser)]
struct BenchFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("receiver-bench").await?;
    let client = plane.client().await?;
    let shutdown = Shutdown::new();
    let flags = BenchFlags::try_parse_from([
        "bench",
        "--watch-all-namespaces=false",
        &format!("--runtime-namespace={namespace}"),
    ])?
    .flags;
    let (runtime, _tasks) = RuntimeContext::with_client(
        notification_controller::CONTROLLER_NAME,
        client.clone(),
        flags,
        shutdown.clone(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(notification_controller::receiver::run(
        runtime,
        listener,
        Default::default(),
    ));
    let path = setup(&client, &namespace).await?;
    let (seen_tx, mut seen) = mpsc::channel(16);
    let repositories: Api<GitRepository> = Api::namespaced(client.clone(), &namespace);
    tokio::spawn(async move {
        let mut stream = watcher(repositories, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(repository)) = stream.next().await {
            let value = repository
                .metadata
                .annotations
                .and_then(|a| a.get(RECONCILE_REQUESTED_AT_ANNOTATION).cloned());
            if let Some(value) = value
                && seen_tx.send((value, Instant::now())).await.is_err()
            {
                return;
            }
        }
    });
    let http = reqwest::Client::new();
    let (mut visible, mut round_trips) = (Vec::new(), Vec::new());
    let mut last = String::new();
    for n in 0..args.requests {
        let body = json!({"ref": "refs/heads/main", "after": format!("{n:040x}")}).to_string();
        let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN.as_bytes());
        let signature = format!("sha256={}", hex::encode(hmac::sign(&key, body.as_bytes())));
        let sent = Instant::now();
        let status = http
            .post(format!("{url}{path}"))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
            .await?
            .status();
        round_trips.push(sent.elapsed());
        if !status.is_success() {
            return Err(anyhow!("webhook {n} answered {status}"));
        }
        loop {
            let (value, at) = tokio::time::timeout(Duration::from_secs(30), seen.recv())
                .await?
                .context("the watch ended")?;
            if value != last {
                last = value;
                visible.push(at.saturating_duration_since(sent));
                break;
            }
        }
    }
    println!("webhooks: {}", args.requests);
    println!(
        "webhook → requestedAt visible: {}",
        Percentiles::of(visible)
    );
    println!(
        "HTTP round trip (annotation written): {}",
        Percentiles::of(round_trips)
    );
    shutdown.trigger();
    Ok(())
}

/// The token Secret, the GitRepository and a Ready GitHub Receiver; returns its webhook path.
async fn setup(client: &kube::Client, namespace: &str) -> Result<String> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"},
        "stringData": {"token": TOKEN},
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    let repositories: Api<GitRepository> = Api::namespaced(client.clone(), namespace);
    let repository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "target"},
        "spec": {"url": "https://example.com/app.git", "interval": "10m"},
    }))?;
    repositories
        .create(&PostParams::default(), &repository)
        .await?;
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), namespace);
    let receiver = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "bench"},
        "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "token"},
                 "resources": [{"kind": "GitRepository", "name": "target"}]},
    }))?;
    receivers.create(&PostParams::default(), &receiver).await?;
    let ready = wait_object(&receivers, "bench", "Ready", |r: &Receiver| {
        r.status.as_ref().is_some_and(|s| s.webhook_path.is_some())
    })
    .await?;
    ready
        .status
        .and_then(|s| s.webhook_path)
        .context("webhook path")
}
