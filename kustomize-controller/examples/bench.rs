//! Benchmark: N podinfo-shaped Kustomizations, each from its own artifact, against a real
//! apiserver; prints time until all are Ready, peak RSS and drift-correction latency.
//!
//! `cargo run -p kustomize-controller --example bench -- 100`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kustomize_controller::cli::Cli;
use kustomize_controller::reconcile::{CONTROLLER_NAME, Context, run};
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_api::kustomize::Kustomization;
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::eventually;
use sluice_e2e::tarball::tar_gz;
use sluice_runtime::{RuntimeContext, Shutdown};

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// How long all Kustomizations may take to become Ready, and one drift correction.
const ALL_READY_TIMEOUT: Duration = Duration::from_secs(1800);
const DRIFT_TIMEOUT: Duration = Duration::from_secs(60);

async fn serve_file(
    State(files): State<Files>,
    Path(name): Path<String>,
) -> Result<Vec<u8>, StatusCode> {
    let files = files
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    files.get(&name).cloned().ok_or(StatusCode::NOT_FOUND)
}

fn podinfo(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      serviceAccountName: {name}
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.9.0
          ports: [{{containerPort: 9898, name: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 9898, targetPort: http, name: http}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}}}
spec:
  rules:
    - host: {name}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: {name}, port: {{number: 9898}}}}}}
"#
    )
}

fn is_ready(ks: &Kustomization) -> bool {
    ks.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn peak_rss_kib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM"))
                .map(|line| line.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let plane = ControlPlane::shared().await?;
    let ns = plane.namespace("bench").await?;
    let client = plane.client().await?;

    let files: Files = Arc::default();
    let router = axum::Router::new()
        .route("/{name}", axum::routing::get(serve_file))
        .with_state(files.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let cache = tempfile::tempdir()?;
    let cli = Cli::parse_from([
        "kustomize-controller".to_owned(),
        "--watch-all-namespaces=false".to_owned(),
        format!("--runtime-namespace={ns}"),
        "--concurrent=8".to_owned(),
        format!("--artifact-cache-dir={}", cache.path().display()),
    ]);
    let kubeconfig = Kubeconfig::read_from(plane.kubeconfig_path())?;
    let base_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let shutdown = Shutdown::new();
    let (runtime, _tasks) = RuntimeContext::with_client(
        CONTROLLER_NAME,
        client.clone(),
        cli.runtime,
        shutdown.clone(),
    )?;
    let context = Arc::new(Context::new(runtime, cli.controller, base_config)?);

    let repositories: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), &ns);
    for index in 0..count {
        let name = format!("app-{index}");
        let bytes = tar_gz([("podinfo.yaml", podinfo(&name))])?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        files
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(format!("{name}.tar.gz"), bytes);
        let repository: GitRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name}, "spec": {"url": "https://example.invalid/x.git", "interval": "1h"},
        }))?;
        repositories
            .create(&PostParams::default(), &repository)
            .await?;
        let status = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": name},
            "status": {"artifact": {"digest": digest, "lastUpdateTime": "2026-01-01T00:00:00Z", "path": "x",
                "revision": format!("main@sha1:{}", "a".repeat(40)), "url": format!("{base}/{name}.tar.gz")}}});
        repositories
            .patch_status(
                &name,
                &PatchParams::apply("source-controller").force(),
                &Patch::Apply(&status),
            )
            .await?;
        let kustomization: Kustomization = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": name},
            "spec": {"interval": "1h", "prune": true, "targetNamespace": ns, "sourceRef": {"kind": "GitRepository", "name": name}},
        }))?;
        kustomizations
            .create(&PostParams::default(), &kustomization)
            .await?;
    }

    let started = Instant::now();
    tokio::spawn(run(context.clone()));
    eventually(
        "every Kustomization Ready",
        ALL_READY_TIMEOUT,
        Duration::from_millis(200),
        || async {
            let list = kustomizations.list(&ListParams::default()).await?;
            let ready = list.items.iter().filter(|ks| is_ready(ks)).count();
            if ready == count {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{ready}/{count} Ready"))
            }
        },
    )
    .await?;
    let all_ready = started.elapsed();
    println!("kustomizations: {count}");
    println!("time until all Ready: {:.2}s", all_ready.as_secs_f64());
    println!(
        "peak RSS after apply (VmHWM, whole bench process): {} KiB",
        peak_rss_kib()
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let mut latencies = Vec::new();
    for edit in 0..50 {
        let name = format!("app-{}", edit % count);
        let intruder = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.9.0"}]}}}});
        let edited = Instant::now();
        deployments
            .patch(
                &name,
                &PatchParams::apply("intruder").force(),
                &Patch::Apply(&intruder),
            )
            .await?;
        eventually(
            &format!("drift on {name} corrected"),
            DRIFT_TIMEOUT,
            Duration::from_millis(10),
            || async {
                let replicas = deployments.get(&name).await?.spec.and_then(|s| s.replicas);
                match replicas {
                    Some(0) => Ok(()),
                    other => Err(anyhow::anyhow!("replicas {other:?}")),
                }
            },
        )
        .await?;
        latencies.push(edited.elapsed());
    }
    latencies.sort();
    println!(
        "drift correction latency over 50 edits: p50 {:.0}ms, p95 {:.0}ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.95).as_secs_f64() * 1000.0
    );
    println!("peak RSS at end (VmHWM): {} KiB", peak_rss_kib());
    shutdown.trigger();
    Ok(())
}
