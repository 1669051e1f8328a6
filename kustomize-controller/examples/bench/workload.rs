//! The benchmark's apps: one artifact server on 127.0.0.1 and, per app, a GitRepository whose
//! status points at a podinfo-shaped artifact plus a Kustomization applying it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures::{StreamExt, TryStreamExt, stream};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_api::kustomize::Kustomization;
use sluice_api::source::GitRepository;
use sluice_e2e::tarball::tar_gz;

/// The image of every Deployment (never pulled: replicas 0).
pub const PODINFO_IMAGE: &str = "ghcr.io/stefanprodan/podinfo:6.9.0";
/// Objects created in parallel while setting up.
const CREATE_CONCURRENCY: usize = 16;

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Serves artifact tarballs by name over plain HTTP on a loopback port.
pub struct ArtifactServer {
    base_url: String,
    files: Files,
    task: tokio::task::JoinHandle<()>,
}

impl ArtifactServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> Result<Self> {
        let files: Files = Arc::default();
        let router = axum::Router::new()
            .route("/{name}", axum::routing::get(serve_file))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("artifact server stopped: {error}");
            }
        });
        Ok(Self {
            base_url,
            files,
            task,
        })
    }

    /// Stores `bytes` as `name`; returns its URL and `sha256:` digest.
    fn publish(&self, name: &str, bytes: Vec<u8>) -> (String, String) {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), bytes);
        (format!("{}/{name}", self.base_url), digest)
    }
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_file(
    State(files): State<Files>,
    Path(name): Path<String>,
) -> Result<Vec<u8>, StatusCode> {
    let files = files.lock().unwrap_or_else(PoisonError::into_inner);
    files.get(&name).cloned().ok_or(StatusCode::NOT_FOUND)
}

/// The name of app `index`: its GitRepository, Kustomization and every object it applies.
pub fn app_name(index: usize) -> String {
    format!("app-{index}")
}

/// podinfo's objects: ServiceAccount, Deployment (replicas 0), Service and Ingress.
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
          image: {PODINFO_IMAGE}
          ports: [{{containerPort: 9898, name: http}}]
          readinessProbe:
            httpGet: {{path: /readyz, port: 9898}}
            initialDelaySeconds: 1
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

/// Creates `count` apps in `namespace`, `CREATE_CONCURRENCY` at a time.
pub async fn create_apps(
    client: &Client,
    namespace: &str,
    server: &ArtifactServer,
    count: usize,
) -> Result<()> {
    stream::iter(0..count)
        .map(|index| create_app(client, namespace, server, index))
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn create_app(
    client: &Client,
    namespace: &str,
    server: &ArtifactServer,
    index: usize,
) -> Result<()> {
    let name = app_name(index);
    let (url, digest) = server.publish(
        &format!("{name}.tar.gz"),
        tar_gz([("podinfo.yaml", podinfo(&name))])?,
    );
    let repositories: Api<GitRepository> = Api::namespaced(client.clone(), namespace);
    let repository: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": {"url": "https://example.invalid/podinfo.git", "interval": "1h"},
    }))?;
    repositories
        .create(&PostParams::default(), &repository)
        .await
        .with_context(|| format!("creating GitRepository {name}"))?;
    let status = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": name},
        "status": {"artifact": {"digest": digest, "lastUpdateTime": "2026-01-01T00:00:00Z", "path": "x",
            "revision": format!("main@sha1:{}", "a".repeat(40)), "url": url}},
    });
    repositories
        .patch_status(
            &name,
            &PatchParams::apply("source-controller").force(),
            &Patch::Apply(&status),
        )
        .await
        .with_context(|| format!("patching the status of GitRepository {name}"))?;
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), namespace);
    let kustomization: Kustomization = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name},
        "spec": {"interval": "1h", "prune": true, "wait": true, "timeout": "5m",
            "targetNamespace": namespace, "sourceRef": {"kind": "GitRepository", "name": name}},
    }))?;
    kustomizations
        .create(&PostParams::default(), &kustomization)
        .await
        .with_context(|| format!("creating Kustomization {name}"))?;
    Ok(())
}

/// Whether the Kustomization's Ready condition is True.
pub fn is_ready(kustomization: &Kustomization) -> bool {
    kustomization.status.as_ref().is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}
