//! In-process image-reflector-controller against the shared test control plane: each harness
//! watches only objects carrying its own label, in namespaces of its own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use image_reflector::reconcile::{FailedScans, ImageContext, ImageFlags, run_controllers};
use image_reflector::storage::TagStore;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_api::image::{ImagePolicy, ImageRepository};
use sluice_e2e::ControlPlane;
use sluice_e2e::poll::{request_reconcile, wait_object};
use sluice_e2e::registry::{Artifact, OCI_MANIFEST, OciClient};
use sluice_registry::RegistryClient;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};
use tokio::task::JoinHandle;

/// The label every object of a harness carries, so concurrent tests never see each other's.
const HARNESS_LABEL: &str = "test.sluice.dev/harness";

#[derive(Parser)]
struct TestFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// How a harness runs the controller.
#[derive(Clone)]
pub struct Options {
    pub no_cross_namespace_refs: bool,
    pub storage: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            no_cross_namespace_refs: true,
            storage: None,
        }
    }
}

/// A running controller and a fresh namespace.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub label: String,
    pub context: Arc<ImageContext>,
    pub storage: PathBuf,
    shutdown: Shutdown,
    controllers: Option<JoinHandle<()>>,
    _storage_dir: Option<tempfile::TempDir>,
}

impl Harness {
    pub async fn start(prefix: &str) -> Result<Self> {
        Self::start_with(prefix, Options::default()).await
    }

    pub async fn start_with(prefix: &str, options: Options) -> Result<Self> {
        let control_plane = ControlPlane::shared().await?;
        let namespace = control_plane.namespace(prefix).await?;
        Self::launch(namespace.clone(), namespace, options).await
    }

    async fn launch(namespace: String, label: String, options: Options) -> Result<Self> {
        let client = ControlPlane::shared().await?.client().await?;
        let (storage, storage_dir) = match options.storage {
            Some(path) => (path, None),
            None => {
                let dir = tempfile::tempdir()?;
                (dir.path().to_owned(), Some(dir))
            }
        };
        let flags = TestFlags::parse_from([
            "test",
            &format!("--watch-label-selector={HARNESS_LABEL}={label}"),
            "--min-retry-delay=300ms",
            "--max-retry-delay=2s",
            "--requeue-dependency=1s",
        ])
        .flags;
        let shutdown = Shutdown::new();
        let (runtime, _tasks) = RuntimeContext::with_client(
            image_reflector::CONTROLLER_NAME,
            client.clone(),
            flags,
            shutdown.clone(),
        )?;
        let context = Arc::new(ImageContext {
            runtime,
            store: Arc::new(TagStore::new(&storage, 16 * 1024 * 1024)?),
            registry: RegistryClient::default(),
            failed_scans: FailedScans::default(),
            flags: ImageFlags {
                no_cross_namespace_refs: options.no_cross_namespace_refs,
                gc_interval: Duration::ZERO,
            },
        });
        let controllers = tokio::spawn(run_controllers(context.clone()));
        Ok(Self {
            client,
            namespace,
            label,
            context,
            storage,
            shutdown,
            controllers: Some(controllers),
            _storage_dir: storage_dir,
        })
    }

    /// Stops the controller and starts a new one on the same storage, namespace and label.
    pub async fn restart(mut self) -> Result<Self> {
        self.halt().await;
        let storage_dir = self._storage_dir.take();
        let options = Options {
            storage: Some(self.storage.clone()),
            ..Options::default()
        };
        let mut restarted =
            Self::launch(self.namespace.clone(), self.label.clone(), options).await?;
        restarted._storage_dir = storage_dir;
        Ok(restarted)
    }

    /// Another namespace, whose objects this harness also reconciles.
    pub async fn other_namespace(&self, prefix: &str) -> Result<String> {
        ControlPlane::shared()
            .await?
            .namespace(prefix)
            .await
            .map_err(Into::into)
    }

    pub fn repositories(&self) -> Api<ImageRepository> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn policies(&self) -> Api<ImagePolicy> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn manifest(&self, kind: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": kind,
            "metadata": {"name": name, "labels": {HARNESS_LABEL: self.label}},
            "spec": spec,
        })
    }

    pub async fn create_repository(&self, name: &str, spec: serde_json::Value) -> Result<()> {
        self.create_repository_in(&self.namespace, name, spec).await
    }

    pub async fn create_repository_in(
        &self,
        namespace: &str,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<()> {
        let object: ImageRepository =
            serde_json::from_value(self.manifest("ImageRepository", name, spec))?;
        Api::<ImageRepository>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &object)
            .await?;
        Ok(())
    }

    pub async fn create_policy(&self, name: &str, spec: serde_json::Value) -> Result<()> {
        let object: ImagePolicy = serde_json::from_value(self.manifest("ImagePolicy", name, spec))?;
        self.policies()
            .create(&PostParams::default(), &object)
            .await?;
        Ok(())
    }

    /// Creates a Secret of `type_` from string pairs.
    pub async fn create_secret(
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

    /// A `kubernetes.io/dockerconfigjson` Secret for `host` with these credentials.
    pub async fn create_docker_secret(
        &self,
        name: &str,
        host: &str,
        username: &str,
        password: &str,
    ) -> Result<()> {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let config = json!({"auths": {host: {"auth": auth}}}).to_string();
        self.create_secret(
            name,
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", &config)],
        )
        .await
    }

    pub async fn wait_repository(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&ImageRepository) -> bool,
    ) -> Result<ImageRepository> {
        Ok(wait_object(&self.repositories(), name, what, check).await?)
    }

    pub async fn wait_policy(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&ImagePolicy) -> bool,
    ) -> Result<ImagePolicy> {
        Ok(wait_object(&self.policies(), name, what, check).await?)
    }

    /// Asks for a scan with `reconcile.fluxcd.io/requestedAt` and waits until it is handled.
    pub async fn request_scan(&self, name: &str, token: &str) -> Result<ImageRepository> {
        Ok(request_reconcile(&self.repositories(), name, token).await?)
    }

    /// `(reason, note)` of the Kubernetes Events about `name`.
    pub async fn events(&self, name: &str) -> Result<Vec<(String, String)>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect())
    }

    async fn halt(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.controllers.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    pub fn storage_root(&self) -> &Path {
        &self.storage
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub const WAIT: Duration = Duration::from_secs(90);
pub const POLL: Duration = Duration::from_millis(200);

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `(status, reason, message)` of the Ready condition.
pub fn ready_of<K: sluice_api::FluxObject>(object: &K) -> Option<(String, String, String)> {
    condition(object.conditions(), "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Ready=True for the current generation.
pub fn is_ready<K: sluice_api::FluxObject>(object: &K) -> bool {
    ready_of(object).is_some_and(|(status, _, _)| status == "True")
        && object.observed_generation() == object.meta().generation
}

/// Ready=False with `reason`.
pub fn failed_with<K: sluice_api::FluxObject>(reason: &'static str) -> impl Fn(&K) -> bool {
    move |object| ready_of(object).is_some_and(|(status, r, _)| status == "False" && r == reason)
}

/// Stalled=True with `reason`.
pub fn stalled_with<K: sluice_api::FluxObject>(reason: &'static str) -> impl Fn(&K) -> bool {
    move |object| {
        condition(object.conditions(), "Stalled")
            .is_some_and(|c| c.status == "True" && c.reason == reason)
    }
}

/// The policy's `latestRef.tag`.
pub fn latest_tag(policy: &ImagePolicy) -> Option<String> {
    policy
        .status
        .as_ref()?
        .latest_ref
        .as_ref()
        .map(|r| r.tag.clone())
}

/// Pushes one small artifact as `repo:<first tag>` and its manifest under every other tag;
/// returns the manifest digest.
pub async fn push_tags<S: AsRef<str>>(
    client: &OciClient,
    repo: &str,
    tags: &[S],
) -> Result<String> {
    let (first, rest) = tags.split_first().ok_or_else(|| anyhow!("no tags"))?;
    let artifact = Artifact::from_files([("app.yaml", "kind: ConfigMap\n")], "test", "v1")?;
    let pushed = client
        .push_artifact(repo, first.as_ref(), &artifact)
        .await?;
    let manifest = client.get_manifest(repo, first.as_ref()).await?;
    futures::stream::iter(rest)
        .map(|tag| client.put_manifest(repo, tag.as_ref(), OCI_MANIFEST, &manifest.bytes))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .context("tagging")?;
    Ok(pushed.manifest_digest)
}

/// `spec` with the fields of `extra` added or replaced.
pub fn merged(mut spec: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    spec
}
