//! Test harness: a real apiserver, an in-process controller watching one namespace, and an
//! HTTP server serving artifact tarballs, as Flux's own kustomize-controller tests do.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use clap::Parser;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kustomize_controller::cli::Cli;
use kustomize_controller::reconcile::{CONTROLLER_NAME, Context, run};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_api::kustomize::Kustomization;
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::eventually;
use sluice_e2e::tarball::tar_gz;
use sluice_runtime::{Metrics, RuntimeContext, Shutdown};

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// How long the waits below poll, and how often.
const WAIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);

/// Serves `/<name>` from an in-memory map; unknown names are 404.
#[derive(Clone, Default)]
pub struct ArtifactServer {
    files: Files,
    pub base: String,
}

async fn serve_file(
    State(files): State<Files>,
    Path(name): Path<String>,
) -> Result<Vec<u8>, StatusCode> {
    files
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)
}

impl ArtifactServer {
    pub async fn start() -> Self {
        let files: Files = Arc::default();
        let router = axum::Router::new()
            .route("/{name}", axum::routing::get(serve_file))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { files, base }
    }

    /// Stores raw bytes and returns (url, sha256 digest).
    pub fn put_bytes(&self, name: &str, bytes: Vec<u8>) -> (String, String) {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        self.files.lock().unwrap().insert(name.to_owned(), bytes);
        (format!("{}/{name}", self.base), digest)
    }

    /// Stores a tar.gz of `files` and returns (url, digest).
    pub fn put(&self, name: &str, files: &[(&str, &str)]) -> (String, String) {
        self.put_bytes(name, tar_gz(files.iter().copied()).unwrap())
    }
}

pub struct Harness {
    pub plane: &'static ControlPlane,
    pub client: Client,
    pub ns: String,
    pub server: ArtifactServer,
    pub metrics: Metrics,
    shutdown: Shutdown,
    _cache: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn admin_config(plane: &ControlPlane) -> Config {
    let kubeconfig = Kubeconfig::read_from(plane.kubeconfig_path()).unwrap();
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap()
}

impl Harness {
    pub async fn start(prefix: &str, extra: &[&str]) -> Self {
        Self::start_on(ControlPlane::shared().await.unwrap(), prefix, extra).await
    }

    pub async fn start_on(plane: &'static ControlPlane, prefix: &str, extra: &[&str]) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ns = plane.namespace(prefix).await.unwrap();
        let client = plane.client().await.unwrap();
        let cache = tempfile::tempdir().unwrap();
        let mut args = vec![
            "kustomize-controller".to_owned(),
            "--watch-all-namespaces=false".to_owned(),
            format!("--runtime-namespace={ns}"),
            "--requeue-dependency=1s".to_owned(),
            "--health-check-interval=1s".to_owned(),
            "--min-retry-delay=200ms".to_owned(),
            "--max-retry-delay=2s".to_owned(),
            "--http-retry=0".to_owned(),
            format!("--artifact-cache-dir={}", cache.path().display()),
        ];
        // A flag in `extra` replaces the default above.
        let flag = |arg: &str| arg.split('=').next().unwrap_or(arg).to_owned();
        args.retain(|arg| !extra.iter().any(|extra| flag(extra) == flag(arg)));
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let mut cli = Cli::parse_from(args);
        cli.controller.apply_feature_gates();
        let shutdown = Shutdown::new();
        let (runtime, _tasks) = RuntimeContext::with_client(
            CONTROLLER_NAME,
            client.clone(),
            cli.runtime,
            shutdown.clone(),
        )
        .unwrap();
        let metrics = runtime.metrics.clone();
        let context = Context::new(runtime, cli.controller, admin_config(plane).await).unwrap();
        tokio::spawn(run(Arc::new(context)));
        Self {
            plane,
            client,
            ns,
            server: ArtifactServer::start().await,
            metrics,
            shutdown,
            _cache: cache,
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates (or updates the artifact of) GitRepository `name` serving `files` as revision `rev`.
    pub async fn publish(&self, name: &str, revision: &str, files: &[(&str, &str)]) {
        let (url, digest) = self.server.put(&format!("{name}-{revision}.tar.gz"), files);
        self.set_artifact(name, revision, &url, &digest).await;
    }

    pub async fn set_artifact(&self, name: &str, revision: &str, url: &str, digest: &str) {
        let api: Api<GitRepository> = self.api();
        if api.get_opt(name).await.unwrap().is_none() {
            let repository: GitRepository = serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": name},
                "spec": {"url": "https://example.invalid/repo.git", "interval": "1h"},
            }))
            .unwrap();
            api.create(&PostParams::default(), &repository)
                .await
                .unwrap();
        }
        let revision = format!(
            "main@sha1:{}",
            hex::encode(Sha256::digest(revision.as_bytes()))[..40].to_owned()
        );
        let status = json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name},
            "status": {"artifact": {
                "digest": digest,
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "path": format!("gitrepository/{}/{name}/x.tar.gz", self.ns),
                "revision": revision,
                "url": url,
            }},
        });
        api.patch_status(
            name,
            &PatchParams::apply("source-controller").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    }

    pub async fn revision_of(&self, repository: &str) -> String {
        let api: Api<GitRepository> = self.api();
        let repository = api.get(repository).await.unwrap();
        repository.status.unwrap().artifact.unwrap().revision
    }

    /// Creates Kustomization `name` with `spec` merged over a minimal spec reading `source`.
    pub async fn kustomization(&self, name: &str, source: &str, spec: Value) -> Kustomization {
        self.kustomization_with(name, source, spec, json!({})).await
    }

    pub async fn kustomization_with(
        &self,
        name: &str,
        source: &str,
        spec: Value,
        metadata: Value,
    ) -> Kustomization {
        let mut full = json!({
            "interval": "10m",
            "retryInterval": "1s",
            "prune": true,
            "targetNamespace": self.ns,
            "sourceRef": {"kind": "GitRepository", "name": source},
        });
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut meta = json!({"name": name});
        meta.as_object_mut()
            .unwrap()
            .extend(metadata.as_object().unwrap().clone());
        let object: Kustomization = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": meta,
            "spec": full,
        }))
        .unwrap();
        self.api()
            .create(&PostParams::default(), &object)
            .await
            .unwrap()
    }

    /// Polls Kustomization `name` until `ready` holds; panics with its status after 90s.
    pub async fn wait_ks(
        &self,
        name: &str,
        what: &str,
        ready: impl Fn(&Kustomization) -> bool,
    ) -> Kustomization {
        let api: Api<Kustomization> = self.api();
        eventually(
            &format!("Kustomization {name}: {what}"),
            WAIT,
            POLL,
            || async {
                match api.get_opt(name).await.unwrap() {
                    Some(object) if ready(&object) => Ok(object),
                    Some(object) => Err(format!(
                        "status: {}",
                        serde_json::to_string_pretty(&object.status).unwrap()
                    )),
                    None => Err("not found".to_owned()),
                }
            },
        )
        .await
        .unwrap_or_else(|timeout| panic!("{timeout}"))
    }

    /// Waits until `name` is Ready at the current revision of `repository` and returns it.
    pub async fn wait_ready(&self, name: &str, repository: &str) -> Kustomization {
        let revision = self.revision_of(repository).await;
        self.wait_ks(name, "Ready at the source revision", |ks| {
            is_success(ks) && last_applied(ks) == Some(revision.as_str())
        })
        .await
    }

    /// Waits until `name` has Ready=False with `reason`.
    pub async fn wait_failed(&self, name: &str, reason: &str) -> Kustomization {
        self.wait_ks(name, &format!("Ready=False/{reason}"), |ks| {
            condition(ks, "Ready").is_some_and(|c| c.status == "False" && c.reason == reason)
        })
        .await
    }

    /// Polls until `check` returns true; panics after 90s naming `what`.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        eventually(what, WAIT, POLL, || async {
            check().await.then_some(()).ok_or("not yet")
        })
        .await
        .unwrap_or_else(|timeout| panic!("{timeout}"));
    }

    /// How many reconciles of Kustomization `name` finished, from `gotk_reconcile_duration_seconds`.
    pub fn reconciles(&self, name: &str) -> u64 {
        let text = self.metrics.encode().unwrap();
        let (name, namespace) = (
            format!("name=\"{name}\""),
            format!("namespace=\"{}\"", self.ns),
        );
        text.lines()
            .filter(|line| line.starts_with("gotk_reconcile_duration_seconds_count{"))
            .filter(|line| line.contains(&name) && line.contains(&namespace))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Runs of one reconcile step (`apply`, `health`, …) by this harness's controller.
    pub fn step_runs(&self, step: &str) -> u64 {
        let text = self.metrics.encode().unwrap();
        let step = format!("step=\"{step}\"");
        text.lines()
            .filter(|line| line.starts_with("sluice_reconcile_step_duration_seconds_count{"))
            .filter(|line| line.contains(&step))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    pub async fn delete_ks(&self, name: &str) {
        let api: Api<Kustomization> = self.api();
        api.delete(name, &DeleteParams::default()).await.unwrap();
        self.eventually(&format!("Kustomization {name} deleted"), || async {
            api.get_opt(name).await.unwrap().is_none()
        })
        .await;
    }
}

pub fn condition<'a>(
    ks: &'a Kustomization,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    ks.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn last_applied(ks: &Kustomization) -> Option<&str> {
    ks.status.as_ref()?.last_applied_revision.as_deref()
}

/// Flux's `isReconcileSuccess`: Ready=True for the current generation, lastApplied == lastAttempted.
pub fn is_success(ks: &Kustomization) -> bool {
    let Some(status) = ks.status.as_ref() else {
        return false;
    };
    condition(ks, "Ready")
        .is_some_and(|c| c.status == "True" && c.observed_generation == ks.metadata.generation)
        && status.observed_generation == ks.metadata.generation
        && status.last_applied_revision == status.last_attempted_revision
}

pub fn inventory_ids(ks: &Kustomization) -> Vec<String> {
    ks.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

pub fn config_map(name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{data}\"\n"
    )
}
