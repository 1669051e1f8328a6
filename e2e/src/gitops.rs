//! Sluice's source-controller and kustomize-controller as OS processes against a control plane,
//! and helpers for the GitRepository → Kustomization loop (loop tests, benchmark, `sluice-dev`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sluice_api::kustomize::Kustomization;
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_api::source::GitRepository;

use crate::net::restartable_port;
use crate::poll::{Timeout, eventually};
use crate::process::Supervised;
use crate::{Error, Result};

/// How long a controller may take to open its health endpoint after start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Field manager of the objects these helpers apply.
pub const FIELD_MANAGER: &str = "sluice-e2e";

/// One of the two controllers of the GitOps loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Source,
    Kustomize,
}

impl Controller {
    /// Both controllers, in start order.
    pub const ALL: [Controller; 2] = [Controller::Source, Controller::Kustomize];

    /// The binary (and process) name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Controller::Source => "source-controller",
            Controller::Kustomize => "kustomize-controller",
        }
    }
}

/// A controller binary built by cargo in the running executable's profile directory
/// (`target/<profile>/`, also when running from `target/<profile>/deps/`).
pub fn controller_binary(controller: Controller) -> Result<PathBuf> {
    let name = controller.binary_name();
    let exe = std::env::current_exe()?;
    let mut profile_dir = exe
        .parent()
        .ok_or_else(|| Error::Setup(format!("{} has no parent directory", exe.display())))?;
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir.parent().unwrap_or(profile_dir);
    }
    let path = profile_dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    let build = if profile_dir.file_name().is_some_and(|n| n == "release") {
        "cargo build --release -p source-controller -p kustomize-controller"
    } else {
        "cargo build --workspace --bins"
    };
    Err(Error::Setup(format!(
        "{name} is not built: {} is missing; run `{build}` first",
        path.display()
    )))
}

/// Which namespaces the controllers watch.
#[derive(Clone, Debug)]
pub enum Scope {
    /// `--watch-all-namespaces=true`.
    AllNamespaces,
    /// Only this namespace (`--watch-all-namespaces=false --runtime-namespace=<ns>`), so that
    /// several controller sets can share one control plane.
    Namespace(String),
}

struct Running {
    controller: Controller,
    args: Vec<String>,
    health_port: u16,
    process: Supervised,
}

/// source-controller and kustomize-controller running as processes with a kubeconfig; their
/// storage, caches and logs live in one directory. Stopped on drop.
pub struct Controllers {
    dir: PathBuf,
    kubeconfig: PathBuf,
    running: Vec<Running>,
}

impl Controllers {
    /// Starts both controllers (leader election off) and waits until their health endpoints
    /// answer. Blocks for up to half a minute.
    pub fn start(kubeconfig: &Path, dir: &Path, scope: Scope) -> Result<Self> {
        Self::start_only(kubeconfig, dir, scope, &Controller::ALL)
    }

    /// Starts `which` of the two controllers, as [`Controllers::start`] does.
    pub fn start_only(
        kubeconfig: &Path,
        dir: &Path,
        scope: Scope,
        which: &[Controller],
    ) -> Result<Self> {
        Self::start_with_args(kubeconfig, dir, scope, which, &[])
    }

    /// Like [`Controllers::start_only`], with `extra_args` added to every controller's flags
    /// (e.g. `--events-addr`).
    pub fn start_with_args(
        kubeconfig: &Path,
        dir: &Path,
        scope: Scope,
        which: &[Controller],
        extra_args: &[String],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let storage_port = restartable_port()?;
        let scope_args = match scope {
            Scope::AllNamespaces => vec!["--watch-all-namespaces=true".to_string()],
            Scope::Namespace(ns) => vec![
                "--watch-all-namespaces=false".to_string(),
                format!("--runtime-namespace={ns}"),
            ],
        };
        let mut controllers = Self {
            dir: dir.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
            running: Vec::new(),
        };
        for &controller in which {
            let mut args = scope_args.clone();
            args.extend([
                "--enable-leader-election=false".to_string(),
                "--log-encoding=console".to_string(),
                format!("--metrics-addr=127.0.0.1:{}", restartable_port()?),
            ]);
            match controller {
                Controller::Source => args.extend([
                    format!("--storage-path={}", dir.join("storage").display()),
                    format!("--storage-addr=127.0.0.1:{storage_port}"),
                    format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
                ]),
                Controller::Kustomize => args.push(format!(
                    "--artifact-cache-dir={}",
                    dir.join("kustomize-cache").display()
                )),
            }
            args.extend(extra_args.iter().cloned());
            let health_port = restartable_port()?;
            args.push(format!("--health-addr=127.0.0.1:{health_port}"));
            let process = controllers.spawn(controller, &args)?;
            controllers.running.push(Running {
                controller,
                args,
                health_port,
                process,
            });
        }
        for &controller in which {
            controllers.wait_until_healthy(controller)?;
        }
        Ok(controllers)
    }

    fn spawn(&self, controller: Controller, args: &[String]) -> Result<Supervised> {
        let name = controller.binary_name();
        Supervised::spawn(
            name,
            &controller_binary(controller)?,
            args,
            &[(
                "KUBECONFIG".to_string(),
                self.kubeconfig.display().to_string(),
            )],
            &self.log_path(controller),
            None,
        )
    }

    fn wait_until_healthy(&mut self, controller: Controller) -> Result<()> {
        let running = self.get_mut(controller)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], running.health_port));
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if !running.process.is_running() || Instant::now() > deadline {
                return Err(Error::NotReady {
                    what: controller.binary_name().to_string(),
                    seconds: START_TIMEOUT.as_secs(),
                    log: running.process.log_tail(3000),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get_mut(&mut self, controller: Controller) -> Result<&mut Running> {
        self.running
            .iter_mut()
            .find(|r| r.controller == controller)
            .ok_or_else(|| Error::Setup(format!("{} was stopped", controller.binary_name())))
    }

    /// SIGKILLs a controller (no graceful shutdown) and waits until it is gone.
    pub fn kill(&mut self, controller: Controller) -> Result<()> {
        self.get_mut(controller)?.process.kill()
    }

    /// Starts a controller again with the same flags, storage and ports; waits until healthy.
    pub fn restart(&mut self, controller: Controller) -> Result<()> {
        let args = self.get_mut(controller)?.args.clone();
        let process = self.spawn(controller, &args)?;
        self.get_mut(controller)?.process = process;
        self.wait_until_healthy(controller)
    }

    /// The log file of a controller (stdout and stderr).
    pub fn log_path(&self, controller: Controller) -> PathBuf {
        self.dir.join(format!("{}.log", controller.binary_name()))
    }

    /// The last bytes of both controllers' logs, for failure messages.
    pub fn log_tails(&self) -> String {
        self.running
            .iter()
            .map(|r| {
                format!(
                    "--- {} ---\n{}{}",
                    r.controller.binary_name(),
                    r.process.log_failures(),
                    r.process.log_tail(2000)
                )
            })
            .collect()
    }

    /// Stops both controllers (SIGTERM, then SIGKILL after a grace period) and waits for them.
    pub fn stop(&mut self) {
        while let Some(mut running) = self.running.pop() {
            running.process.stop();
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A GitRepository following `branch` of `url`, optionally with a basic-auth Secret.
pub fn git_repository(
    name: &str,
    namespace: &str,
    url: &str,
    interval: &str,
    secret: Option<&str>,
) -> Result<GitRepository> {
    let mut spec = json!({"url": url, "interval": interval, "ref": {"branch": "main"}});
    if let Some(secret) = secret {
        spec["secretRef"] = json!({"name": secret});
    }
    from_json(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
}

/// A Kustomization applying `path` of GitRepository `source` with pruning on.
pub fn kustomization(
    name: &str,
    namespace: &str,
    source: &str,
    path: &str,
    interval: &str,
    target_namespace: Option<&str>,
) -> Result<Kustomization> {
    let mut spec = json!({
        "interval": interval,
        "path": path,
        "prune": true,
        "sourceRef": {"kind": "GitRepository", "name": source},
    });
    if let Some(target) = target_namespace {
        spec["targetNamespace"] = json!(target);
    }
    from_json(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
}

fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Setup(format!("invalid manifest: {e}")))
}

/// Server-side applies `object` (forced, field manager [`FIELD_MANAGER`]).
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(object)).await?)
}

/// Annotates an object with `reconcile.fluxcd.io/requestedAt` as a webhook receiver or
/// `flux reconcile` does; returns the token (the current time in nanoseconds).
pub async fn request_reconcile<K>(api: &Api<K>, name: &str) -> Result<String>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let token = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        .to_string();
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(token)
}

/// The `Ready` condition among `conditions`.
pub fn ready_condition(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == "Ready")
}

/// A one-line summary of a Ready condition: `True/Succeeded: message`, or `no Ready condition`.
fn describe_ready(conditions: &[Condition]) -> String {
    match ready_condition(conditions) {
        Some(c) => format!(
            "{}/{}: {}",
            c.status,
            c.reason,
            c.message.replace('\n', " ")
        ),
        None => "no Ready condition".to_string(),
    }
}

/// The Ready summary of a GitRepository plus its artifact revision.
pub fn describe_git_repository(repo: &GitRepository) -> String {
    let status = repo.status.clone().unwrap_or_default();
    format!(
        "GitRepository {}: Ready {}; artifact {}",
        repo.metadata.name.as_deref().unwrap_or_default(),
        describe_ready(&status.conditions),
        status
            .artifact
            .map(|a| a.revision)
            .unwrap_or_else(|| "none".to_string())
    )
}

/// The Ready summary of a Kustomization plus its applied and attempted revisions.
pub fn describe_kustomization(ks: &Kustomization) -> String {
    let status = ks.status.clone().unwrap_or_default();
    format!(
        "Kustomization {}: Ready {}; lastAppliedRevision {}; lastAttemptedRevision {}",
        ks.metadata.name.as_deref().unwrap_or_default(),
        describe_ready(&status.conditions),
        status.last_applied_revision.as_deref().unwrap_or("none"),
        status.last_attempted_revision.as_deref().unwrap_or("none"),
    )
}

/// Whether a Kustomization is Ready=True, up to date with its generation, and applied `revision`.
pub fn kustomization_ready_at(ks: &Kustomization, revision: &str) -> bool {
    let Some(status) = ks.status.as_ref() else {
        return false;
    };
    let ready = ready_condition(&status.conditions).is_some_and(|c| c.status == "True");
    ready
        && status.last_applied_revision.as_deref() == Some(revision)
        && status.observed_generation == ks.metadata.generation
}

/// Name of the fixture app's repository, GitRepository, Kustomization, directory and objects.
pub const APP: &str = "app";

/// The fixture app as plain YAML under `app/` (no kustomization.yaml): a Deployment, a Service
/// and a ConfigMap whose `data.message` is `message`.
pub fn plain_app(message: &str) -> Vec<(String, String)> {
    vec![
        (format!("{APP}/configmap.yaml"), app_configmap(message)),
        (
            format!("{APP}/deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {APP}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {APP}\n  template:\n    metadata:\n      labels:\n        app: {APP}\n    spec:\n      containers:\n        - name: {APP}\n          image: ghcr.io/stefanprodan/podinfo:6.9.0\n          envFrom:\n            - configMapRef:\n                name: {APP}\n"
            ),
        ),
        (
            format!("{APP}/service.yaml"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {APP}\nspec:\n  selector:\n    app: {APP}\n  ports:\n    - port: 80\n      targetPort: 9898\n"
            ),
        ),
    ]
}

/// The fixture app's ConfigMap manifest with `data.message` set to `message`.
pub fn app_configmap(message: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {APP}\ndata:\n  message: {message:?}\n"
    )
}

/// The fixture app's GitOps loop in its own namespace: the `app` repository on a git server, a
/// GitRepository and a Kustomization (path `./app`, prune on, target namespace: its own) named `app`.
pub struct AppLoop {
    pub namespace: String,
    pub client: kube::Client,
    pub repositories: Api<GitRepository>,
    pub kustomizations: Api<Kustomization>,
}

impl AppLoop {
    /// Commits [`plain_app`] with `message` to a new `app` repository on `git` and applies the
    /// GitRepository (interval `source_interval`) and Kustomization (`apply_interval`).
    pub async fn create(
        plane: &crate::ControlPlane,
        namespace: &str,
        git: &crate::git::GitServer,
        message: &str,
        source_interval: &str,
        apply_interval: &str,
    ) -> Result<Self> {
        git.create_repo(APP)?;
        git.commit(APP, "main", plain_app(message), "app: first version")?;
        let client = plane.client().await?;
        let app = Self {
            namespace: namespace.to_string(),
            repositories: Api::namespaced(client.clone(), namespace),
            kustomizations: Api::namespaced(client.clone(), namespace),
            client,
        };
        let repository = git_repository(APP, namespace, &git.http_url(APP), source_interval, None)?;
        apply(&app.repositories, &repository).await?;
        let ks = kustomization(
            APP,
            namespace,
            APP,
            "./app",
            apply_interval,
            Some(namespace),
        )?;
        apply(&app.kustomizations, &ks).await?;
        Ok(app)
    }

    /// An `Api` of namespaced objects in this loop's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The GitRepository and Kustomization, one line each, for failure messages.
    pub async fn describe(&self) -> String {
        let repository = match self.repositories.get(APP).await {
            Ok(repo) => describe_git_repository(&repo),
            Err(e) => format!("GitRepository {APP}: {e}"),
        };
        let ks = match self.kustomizations.get(APP).await {
            Ok(ks) => describe_kustomization(&ks),
            Err(e) => format!("Kustomization {APP}: {e}"),
        };
        format!("{repository}\n{ks}")
    }

    /// Waits until the Kustomization is Ready and applied `revision`; on timeout the error
    /// describes both objects.
    pub async fn wait_applied(
        &self,
        revision: &str,
        timeout: Duration,
    ) -> std::result::Result<Kustomization, Timeout> {
        let what = format!("Kustomization {APP} Ready at {revision}");
        eventually(&what, timeout, Duration::from_millis(100), || async {
            let ks = self
                .kustomizations
                .get(APP)
                .await
                .map_err(|e| e.to_string())?;
            if kustomization_ready_at(&ks, revision) {
                Ok(ks)
            } else {
                Err(self.describe().await)
            }
        })
        .await
    }

    /// Times a push made at `pushed`: until the GitRepository stores `revision` and until the
    /// ConfigMap holds `message` (polled every `poll`); the stored time is the applied time when
    /// the artifact was missed between polls.
    pub async fn time_until_applied(
        &self,
        revision: &str,
        message: &str,
        pushed: Instant,
        timeout: Duration,
        poll: Duration,
    ) -> std::result::Result<(Duration, Duration), Timeout> {
        let stored = std::cell::Cell::new(None);
        let what = format!("{message} applied");
        let applied = eventually(&what, timeout, poll, || async {
            if stored.get().is_none() {
                let repo = self
                    .repositories
                    .get(APP)
                    .await
                    .map_err(|e| e.to_string())?;
                let current = repo.status.and_then(|s| s.artifact).map(|a| a.revision);
                if current.as_deref() == Some(revision) {
                    stored.set(Some(pushed.elapsed()));
                }
            }
            match self.configmap_message().await.map_err(|e| e.to_string())? {
                Some(current) if current == message => Ok(pushed.elapsed()),
                current => Err(format!("ConfigMap message {current:?}")),
            }
        })
        .await?;
        Ok((stored.get().unwrap_or(applied), applied))
    }

    /// The `data.message` of the applied ConfigMap, `None` when it does not exist.
    pub async fn configmap_message(&self) -> Result<Option<String>> {
        let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = self.api();
        Ok(configmaps
            .get_opt(APP)
            .await?
            .and_then(|cm| cm.data)
            .and_then(|data| data.get("message").cloned()))
    }
}

/// The revision string of a commit on `main`, as source-controller reports it.
pub fn main_revision(sha: &str) -> String {
    format!("main@sha1:{sha}")
}
