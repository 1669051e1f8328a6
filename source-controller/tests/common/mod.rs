//! In-process source-controller against the shared test control plane, one namespace per test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use sluice_api::source::{GitRepository, OCIRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::{request_reconcile, wait_object};
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};
use source_controller::helm::cache::IndexCache;
use source_controller::{BucketLimits, SourceContext, Storage, StorageConfig, run_controllers};
use tokio::task::JoinHandle;

#[derive(Parser)]
struct TestFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// A running controller watching one fresh namespace, with its own storage and artifact server.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub storage: Arc<Storage>,
    pub server_address: String,
    shutdown: Shutdown,
    controllers: Option<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
    _storage_dir: tempfile::TempDir,
}

impl Harness {
    /// Starts the controllers on namespace `<prefix>-…` with `--artifact-retention-records=records`.
    pub async fn start(prefix: &str) -> Result<Self> {
        Self::start_with_records(prefix, 2).await
    }

    pub async fn start_with_records(prefix: &str, records: usize) -> Result<Self> {
        Self::start_with(prefix, records, BucketLimits::default()).await
    }

    /// Starts the controllers with `records` retention records and these Bucket caps.
    pub async fn start_with(
        prefix: &str,
        records: usize,
        bucket_limits: BucketLimits,
    ) -> Result<Self> {
        let control_plane = ControlPlane::shared().await?;
        let client = control_plane.client().await?;
        let namespace = control_plane.namespace(prefix).await?;
        let storage_dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server_address = listener.local_addr()?.to_string();
        let storage = Arc::new(Storage::new(StorageConfig {
            root: storage_dir.path().to_owned(),
            advertised_address: server_address.clone(),
            retention_ttl: Duration::from_secs(3600),
            retention_records: records,
            max_artifact_size: 10 * 1024 * 1024,
        })?);
        let flags = TestFlags::parse_from([
            "test",
            "--watch-all-namespaces=false",
            &format!("--runtime-namespace={namespace}"),
            "--min-retry-delay=300ms",
            "--max-retry-delay=2s",
            "--requeue-dependency=1s",
        ])
        .flags;
        let shutdown = Shutdown::new();
        let (runtime, _tasks) = RuntimeContext::with_client(
            "source-controller",
            client.clone(),
            flags,
            shutdown.clone(),
        )?;
        let server = tokio::spawn({
            let storage = storage.clone();
            let token = shutdown.token();
            async move {
                let _ = source_controller::server::serve(listener, storage, token).await;
            }
        });
        let context = Arc::new(SourceContext {
            runtime,
            storage: storage.clone(),
            deny_private_urls: false,
            bucket_limits,
            helm_limits: Default::default(),
            // On (Flux's default is off), so the Helm tests read indexes through it.
            helm_index_cache: IndexCache::new(8, Duration::from_secs(900)),
        });
        let controllers = tokio::spawn(run_controllers(context));
        Ok(Self {
            client,
            namespace,
            storage,
            server_address,
            shutdown,
            controllers: Some(controllers),
            server: Some(server),
            _storage_dir: storage_dir,
        })
    }

    pub fn git_api(&self) -> Api<GitRepository> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn oci_api(&self) -> Api<OCIRepository> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates a GitRepository from a spec given as JSON.
    pub async fn create_git(&self, name: &str, spec: serde_json::Value) -> Result<GitRepository> {
        let object: GitRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": spec,
        }))?;
        Ok(self
            .git_api()
            .create(&PostParams::default(), &object)
            .await?)
    }

    /// Creates an OCIRepository from a spec given as JSON.
    pub async fn create_oci(&self, name: &str, spec: serde_json::Value) -> Result<OCIRepository> {
        let object: OCIRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": name},
            "spec": spec,
        }))?;
        Ok(self
            .oci_api()
            .create(&PostParams::default(), &object)
            .await?)
    }

    /// Creates an Opaque Secret from string pairs.
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        self.create_secret_typed(name, "Opaque", data).await
    }

    pub async fn create_secret_typed(
        &self,
        name: &str,
        type_: &str,
        data: &[(&str, &str)],
    ) -> Result<()> {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            type_: Some(type_.to_owned()),
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// Waits until `check` holds for GitRepository `name`; returns it.
    pub async fn wait_git(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&GitRepository) -> bool,
    ) -> Result<GitRepository> {
        Ok(wait_object(&self.git_api(), name, what, check).await?)
    }

    /// Waits until `check` holds for OCIRepository `name`; returns it.
    pub async fn wait_oci(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&OCIRepository) -> bool,
    ) -> Result<OCIRepository> {
        Ok(wait_object(&self.oci_api(), name, what, check).await?)
    }

    /// Asks for a reconcile with `reconcile.fluxcd.io/requestedAt` and waits until it is handled.
    pub async fn request_git_reconcile(&self, name: &str, token: &str) -> Result<GitRepository> {
        Ok(request_reconcile(&self.git_api(), name, token).await?)
    }

    pub async fn request_oci_reconcile(&self, name: &str, token: &str) -> Result<OCIRepository> {
        Ok(request_reconcile(&self.oci_api(), name, token).await?)
    }

    pub async fn delete_git(&self, name: &str) -> Result<()> {
        self.git_api()
            .delete(name, &DeleteParams::default())
            .await?;
        Ok(())
    }

    /// GETs a URL from the artifact server.
    pub async fn download(&self, url: &str) -> Result<reqwest::Response> {
        Ok(reqwest::Client::new().get(url).send().await?)
    }

    /// Downloads an artifact, checks its digest and unpacks it into a map of path → contents.
    pub async fn fetch_artifact(
        &self,
        url: &str,
        digest: &str,
    ) -> Result<BTreeMap<String, String>> {
        let response = self.download(url).await?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        let bytes = response.bytes().await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != digest {
            bail!("downloaded digest {actual} differs from status digest {digest}");
        }
        let files = sluice_e2e::tarball::untar_gz(&bytes)?;
        Ok(files
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect())
    }

    /// Reasons of the Kubernetes Events about `name`.
    pub async fn event_reasons(&self, name: &str) -> Result<Vec<String>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.reason)
            .collect())
    }

    pub fn storage_root(&self) -> &Path {
        self.storage.root()
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.controllers.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(task) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// How long the waits poll, and how often.
pub const WAIT: Duration = Duration::from_secs(90);
pub const POLL: Duration = Duration::from_millis(200);

/// The `status` of an object as JSON, for failure messages.
fn status_of(object: &impl Serialize) -> String {
    serde_json::to_value(object)
        .map(|value| format!("status {}", value["status"]))
        .unwrap_or_else(|error| error.to_string())
}

pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn git_conditions(object: &GitRepository) -> &[Condition] {
    object
        .status
        .as_ref()
        .map_or(&[], |s| s.conditions.as_slice())
}

pub fn oci_conditions(object: &OCIRepository) -> &[Condition] {
    object
        .status
        .as_ref()
        .map_or(&[], |s| s.conditions.as_slice())
}

/// Whether `type_` has `status` and `reason`.
pub fn has(conditions: &[Condition], type_: &str, status: &str, reason: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

pub fn git_ready(object: &GitRepository) -> bool {
    has(git_conditions(object), "Ready", "True", "Succeeded")
        && object.status.as_ref().and_then(|s| s.observed_generation) == object.metadata.generation
}

pub fn git_failed_with(reason: &'static str) -> impl Fn(&GitRepository) -> bool {
    move |object| has(git_conditions(object), "Ready", "False", reason)
}

/// The artifact (revision, digest, url) of a ready GitRepository.
pub fn git_artifact(object: &GitRepository) -> Result<sluice_api::meta::Artifact> {
    object
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .context("status.artifact is set")
}
