//! Flux's own source-controller, kustomize-controller and helm-controller (built from their pinned Go
//! modules) as processes against a control plane, and the flux CLI: the other side of the interop tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::net::free_port;
use crate::process::Supervised;
use crate::tools;
use crate::{Error, Result};

/// How long a Flux controller may take to open its health endpoint after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One of Flux's controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FluxController {
    Source,
    Kustomize,
    Helm,
}

impl FluxController {
    /// The test binary's name for `tools::binary`.
    fn tool(self) -> &'static str {
        match self {
            FluxController::Source => "flux-source-controller",
            FluxController::Kustomize => "flux-kustomize-controller",
            FluxController::Helm => "flux-helm-controller",
        }
    }

    /// The directory of this controller's unpacked Go module (CRDs, samples, docs).
    pub fn module_dir(self) -> Result<PathBuf> {
        tools::binary(&format!("{}-module", self.tool()))
    }

    /// The directory of this controller's CRDs, as Flux publishes them.
    pub fn crds_dir(self) -> Result<PathBuf> {
        Ok(self.module_dir()?.join("config/crd/bases"))
    }
}

/// One of Flux's Go modules whose CRDs, samples and spec docs the tests read (the first two are
/// also built and run as [`FluxController`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FluxModule {
    Source,
    Kustomize,
    ImageReflector,
    ImageAutomation,
    Notification,
}

impl FluxModule {
    pub const ALL: [Self; 5] = [
        Self::Source,
        Self::Kustomize,
        Self::ImageReflector,
        Self::ImageAutomation,
        Self::Notification,
    ];

    /// The directory of this module, unpacked from the module cache.
    pub fn dir(self) -> Result<PathBuf> {
        let name = match self {
            Self::Source => return FluxController::Source.module_dir(),
            Self::Kustomize => return FluxController::Kustomize.module_dir(),
            Self::ImageReflector => "flux-image-reflector-controller-module",
            Self::ImageAutomation => "flux-image-automation-controller-module",
            Self::Notification => "flux-notification-controller-module",
        };
        tools::binary(name)
    }

    /// The directory of this module's CRDs, as Flux publishes them.
    pub fn crds_dir(self) -> Result<PathBuf> {
        Ok(self.dir()?.join("config/crd/bases"))
    }
}

/// A Flux controller running as a process with a kubeconfig, watching one namespace (leader
/// election off, ports on 127.0.0.1). Stopped on drop.
pub struct FluxProcess {
    process: Supervised,
}

impl FluxProcess {
    /// Starts `controller` watching only `namespace`, with its files under `dir`; forwards
    /// events to `events_url` when given. Blocks until its health endpoint answers.
    pub fn start(
        controller: FluxController,
        kubeconfig: &Path,
        dir: &Path,
        namespace: &str,
        events_url: Option<&str>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let health_port = free_port()?;
        let mut args = vec![
            "--watch-all-namespaces=false".to_string(),
            "--enable-leader-election=false".to_string(),
            "--log-encoding=console".to_string(),
            "--requeue-dependency=2s".to_string(),
            format!("--metrics-addr=127.0.0.1:{}", free_port()?),
            format!("--health-addr=127.0.0.1:{health_port}"),
        ];
        if let Some(url) = events_url {
            args.push(format!("--events-addr={url}"));
        }
        if controller == FluxController::Source {
            // Flux's source-controller refuses a storage path that does not exist yet.
            std::fs::create_dir_all(dir.join("storage"))?;
            let storage_port = free_port()?;
            args.extend([
                format!("--storage-path={}", dir.join("storage").display()),
                format!("--storage-addr=127.0.0.1:{storage_port}"),
                format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
            ]);
        }
        let envs = [
            ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
            ("RUNTIME_NAMESPACE".to_string(), namespace.to_string()),
            ("TMPDIR".to_string(), dir.display().to_string()),
        ];
        let log = dir.join(format!("{}.log", controller.tool()));
        let binary = tools::binary(controller.tool())?;
        let process = Supervised::spawn(controller.tool(), &binary, &args, &envs, &log, None)?;
        let mut running = Self { process };
        running.wait_until_healthy(health_port)?;
        Ok(running)
    }

    /// Starts `controller` watching a new namespace of `plane` named from `prefix`, its files in
    /// the plane's directory; returns the namespace with the running controller.
    pub async fn start_in_new_namespace(
        plane: &crate::ControlPlane,
        controller: FluxController,
        prefix: &str,
    ) -> Result<(String, Self)> {
        let namespace = plane.namespace(prefix).await?;
        let kubeconfig = plane.kubeconfig_path().to_path_buf();
        let dir = plane
            .dir()
            .join(format!("{namespace}-{}", controller.tool()));
        let watched = namespace.clone();
        let started = tokio::task::spawn_blocking(move || {
            Self::start(controller, &kubeconfig, &dir, &watched, None)
        })
        .await
        .map_err(|e| Error::Setup(format!("starting {} failed: {e}", controller.tool())))??;
        Ok((namespace, started))
    }

    fn wait_until_healthy(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if !self.process.is_running() || Instant::now() > deadline {
                return Err(Error::NotReady {
                    what: self.process.name().to_string(),
                    seconds: START_TIMEOUT.as_secs(),
                    log: self.process.log_tail(3000),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last bytes of the controller's log, for failure messages.
    pub fn log_tail(&self) -> String {
        format!(
            "--- {} ---\n{}",
            self.process.name(),
            self.process.log_tail(3000)
        )
    }

    /// Stops the controller (SIGTERM, then SIGKILL after a grace period) and waits for it.
    pub fn stop(mut self) {
        self.process.stop();
    }
}

/// What a flux CLI command printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Stdout and stderr together, as a person reads them.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs the flux CLI with `args` against the cluster of `kubeconfig`.
pub fn flux_cli(kubeconfig: &Path, args: &[&str]) -> Result<CliOutput> {
    run_cli("flux", kubeconfig, args)
}

/// Runs kubectl with `args` against the cluster of `kubeconfig`, as the swap guide does.
pub fn kubectl_cli(kubeconfig: &Path, args: &[&str]) -> Result<CliOutput> {
    run_cli("kubectl", kubeconfig, args)
}

fn run_cli(tool: &str, kubeconfig: &Path, args: &[&str]) -> Result<CliOutput> {
    let output = Command::new(tools::binary(tool)?)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .output()?;
    Ok(CliOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Replaces the control plane's CRDs of the source and kustomize kinds with Flux's own.
pub async fn install_flux_crds(plane: &crate::ControlPlane) -> Result<()> {
    for controller in [FluxController::Source, FluxController::Kustomize] {
        let dir = tokio::task::spawn_blocking(move || controller.crds_dir())
            .await
            .map_err(|e| Error::Setup(format!("building {controller:?} failed: {e}")))??;
        plane.apply_crds_from(&dir).await?;
    }
    Ok(())
}
