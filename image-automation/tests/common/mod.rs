//! In-process image-automation-controller against the shared test control plane and a real git
//! server (smart HTTP with basic auth): each harness watches only automations carrying its own
//! label, in a namespace of its own.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Parser;
use image_automation::reconcile::{AutomationContext, AutomationFlags, run_controller};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_api::image::{ImagePolicy, ImageUpdateAutomation};
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::git::GitServer;
use sluice_e2e::poll::eventually;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};
use tokio::task::JoinHandle;

const HARNESS_LABEL: &str = "test.sluice.dev/harness";
pub const USER: &str = "bot";
pub const PASSWORD: &str = "p4ss-w0rd-secret";
pub const REPO: &str = "fleet";

#[derive(Parser)]
struct TestFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// A running controller, a fresh namespace and a git server with the repository [`REPO`].
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub git: GitServer,
    shutdown: Shutdown,
    controller: Option<JoinHandle<()>>,
}

impl Harness {
    pub async fn start(prefix: &str) -> Result<Self> {
        Self::start_with(prefix, GitServer::builder().basic_auth(USER, PASSWORD)).await
    }

    /// A harness whose git server is built by `git` (e.g. with SSH).
    pub async fn start_with(prefix: &str, git: sluice_e2e::git::GitServerBuilder) -> Result<Self> {
        let control_plane = ControlPlane::shared().await?;
        let namespace = control_plane.namespace(prefix).await?;
        let client = control_plane.client().await?;
        let flags = TestFlags::parse_from([
            "test",
            &format!("--watch-label-selector={HARNESS_LABEL}={namespace}"),
            "--min-retry-delay=300ms",
            "--max-retry-delay=2s",
            "--requeue-dependency=1s",
        ])
        .flags;
        let shutdown = Shutdown::new();
        let (runtime, _tasks) = RuntimeContext::with_client(
            image_automation::CONTROLLER_NAME,
            client.clone(),
            flags,
            shutdown.clone(),
        )?;
        let context = Arc::new(AutomationContext {
            runtime,
            flags: AutomationFlags {
                no_cross_namespace_refs: true,
            },
        });
        let controller = Some(tokio::spawn(run_controller(context)));
        let git = git.start()?;
        git.create_repo(REPO)?;
        Ok(Self {
            client,
            namespace,
            git,
            shutdown,
            controller,
        })
    }

    /// A GitRepository for [`REPO`] over HTTP with a basic-auth Secret holding `password`.
    pub async fn create_source(&self, password: &str) -> Result<()> {
        let data = json!({"username": USER, "password": password});
        self.create_source_at(&self.git.http_url(REPO), data).await
    }

    /// A GitRepository for `url` with a Secret of `data` (string values).
    pub async fn create_source_at(&self, url: &str, data: serde_json::Value) -> Result<()> {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "git-auth"},
            "stringData": data,
        }))?;
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        let repository: GitRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet"},
            "spec": {
                "url": url,
                "interval": "1h",
                "ref": {"branch": "main"},
                "secretRef": {"name": "git-auth"},
            },
        }))?;
        Api::<GitRepository>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &repository)
            .await?;
        Ok(())
    }

    /// An ImagePolicy whose status selects `image:tag` (no image-reflector needed).
    pub async fn set_policy(&self, name: &str, image: &str, tag: &str) -> Result<()> {
        let api = self.policies();
        if api.get_opt(name).await?.is_none() {
            let policy: ImagePolicy = serde_json::from_value(json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": name},
                "spec": {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": ">=0"}}},
            }))?;
            api.create(&PostParams::default(), &policy).await?;
        }
        let status = json!({"status": {"latestRef": {"name": image, "tag": tag}}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        Ok(())
    }

    /// Creates an automation named `name` with `spec` merged over a default one.
    pub async fn create_automation(&self, name: &str, git: serde_json::Value) -> Result<()> {
        let automation: ImageUpdateAutomation = serde_json::from_value(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": name, "labels": {HARNESS_LABEL: self.namespace}},
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                "interval": "1h",
                "git": git,
                "update": {"strategy": "Setters", "path": "./apps"},
            },
        }))?;
        self.automations()
            .create(&PostParams::default(), &automation)
            .await?;
        Ok(())
    }

    /// Reason and note of the Kubernetes events about `name`.
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

    pub fn policies(&self) -> Api<ImagePolicy> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn automations(&self) -> Api<ImageUpdateAutomation> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Waits until `accept` holds for the automation; fails with its last conditions.
    pub async fn wait_automation(
        &self,
        name: &str,
        accept: impl Fn(&ImageUpdateAutomation) -> bool,
    ) -> Result<ImageUpdateAutomation> {
        let api = self.automations();
        eventually(
            &format!("ImageUpdateAutomation {name}"),
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                let api = api.clone();
                let accept = &accept;
                async move {
                    let object = api.get(name).await.map_err(|e| e.to_string())?;
                    if accept(&object) {
                        Ok(object)
                    } else {
                        Err(format!("{:?}", object.status))
                    }
                }
            },
        )
        .await
        .map_err(|e| anyhow!("{e}"))
    }

    /// Waits until the branch's head differs from `previous`; returns the new head.
    pub async fn wait_head_change(&self, branch: &str, previous: &str) -> Result<String> {
        eventually(
            &format!("a push to {branch}"),
            Duration::from_secs(60),
            Duration::from_millis(200),
            || async move {
                match self.git.head(REPO, branch) {
                    Ok(head) if head != previous => Ok(head),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
        .map_err(|e| anyhow!("{e}"))
    }

    /// `git show -s --format=<format> <rev>` in the bare repository.
    pub fn show(&self, rev: &str, format: &str) -> Result<String> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(self.git.repo_path(REPO))
            .args(["show", "-s", &format!("--format={format}"), rev])
            .output()?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The file at `path` on `branch`.
    pub fn file(&self, branch: &str, path: &str) -> Result<String> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(self.git.repo_path(REPO))
            .args(["show", &format!("{branch}:{path}")])
            .output()?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The condition of `type_`, if set.
pub fn condition<'a>(object: &'a ImageUpdateAutomation, type_: &str) -> Option<&'a Condition> {
    object
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Ready with status `status`.
pub fn ready_is(object: &ImageUpdateAutomation, status: &str) -> bool {
    condition(object, "Ready").is_some_and(|c| c.status == status)
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(controller) = self.controller.take() {
            controller.abort();
        }
    }
}
