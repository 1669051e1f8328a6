//! A Sluice controller binary run as a child process for a benchmark, with its metrics address.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::ChildGuard;
use super::procfs::{CpuTimes, Proc, status_kib};
use crate::net::free_port;
use crate::{Error, Result};

/// Controller flags a benchmark passes through unchanged.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PassthroughArgs {
    /// The controller's --kube-api-qps (its default when absent).
    #[arg(long)]
    pub kube_api_qps: Option<f32>,

    /// The controller's --kube-api-burst (its default when absent).
    #[arg(long)]
    pub kube_api_burst: Option<u32>,

    /// Any other controller flag, e.g. `--extra-arg=--log-level=debug`; repeatable.
    #[arg(long = "extra-arg", allow_hyphen_values = true)]
    pub extra_args: Vec<String>,

    /// A directory of CRDs applied over ours before the controller starts, e.g. Flux's own
    /// `config/crd/bases` to run Flux's controller (found through `SLUICE_BENCH_BIN_DIR`).
    #[arg(long)]
    pub crds: Option<PathBuf>,
}

impl PassthroughArgs {
    /// Applies `--crds`, if given, to `plane`.
    pub async fn apply_crds(&self, plane: &crate::ControlPlane) -> Result<()> {
        match &self.crds {
            Some(dir) => plane.apply_crds_from(dir).await,
            None => Ok(()),
        }
    }

    /// The flags as command-line arguments.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(qps) = self.kube_api_qps {
            flags.push(format!("--kube-api-qps={qps}"));
        }
        if let Some(burst) = self.kube_api_burst {
            flags.push(format!("--kube-api-burst={burst}"));
        }
        flags.extend(self.extra_args.iter().cloned());
        flags
    }
}

/// A controller process watching one namespace, with metrics and health on free loopback ports.
pub struct ControllerProcess {
    guard: ChildGuard,
    metrics_url: String,
}

impl ControllerProcess {
    /// Starts `binary` with `KUBECONFIG=kubeconfig`, watching only `namespace`, plus `flags`.
    pub fn spawn(
        binary: &Path,
        kubeconfig: &Path,
        namespace: &str,
        flags: &[String],
    ) -> Result<Self> {
        let metrics_port = free_port()?;
        let mut args = vec![
            "--watch-all-namespaces=false".to_owned(),
            "--enable-leader-election=false".to_owned(),
            "--events-addr=".to_owned(),
            "--log-encoding=console".to_owned(),
            format!("--metrics-addr=127.0.0.1:{metrics_port}"),
            format!("--health-addr=127.0.0.1:{}", free_port()?),
        ];
        args.extend(flags.iter().cloned());
        // The namespace by environment, as Flux's Deployments set it, so that Flux's own
        // controllers run in the same benchmark as ours.
        let envs = [
            ("KUBECONFIG".to_owned(), kubeconfig.display().to_string()),
            ("RUNTIME_NAMESPACE".to_owned(), namespace.to_owned()),
        ];
        Ok(Self {
            guard: ChildGuard::spawn(binary, &args, &envs)?,
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
        })
    }

    /// The process's PID.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// CPU seconds of the controller and of its reaped children (git, kustomize…).
    pub fn cpu(&self) -> Result<CpuTimes> {
        CpuTimes::of(Proc::Pid(self.pid()))
    }

    /// A `/proc/<pid>/status` memory field in KiB (`VmHWM`, `VmRSS`).
    pub fn memory_kib(&self, field: &str) -> Result<u64> {
        status_kib(Proc::Pid(self.pid()), field)
    }

    /// The controller's `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        super::prometheus::scrape(&self.metrics_url).await
    }

    /// Awaits `task`, failing early with the controller's log if the controller exits first.
    pub async fn supervise<T>(&mut self, mut task: JoinHandle<Result<T>>) -> Result<T> {
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                joined = &mut task => {
                    return joined.map_err(|e| Error::Setup(format!("bench task failed: {e}")))?;
                }
                _ = check.tick() => {
                    if !self.guard.is_running() {
                        task.abort();
                        return Err(Error::Setup(format!(
                            "the controller exited early; its log ends with:\n{}",
                            self.guard.log_tail(3000)
                        )));
                    }
                }
            }
        }
    }

    /// Keeps the log after the process is stopped (for a failed run) and returns its path.
    pub fn keep_log(&mut self) -> PathBuf {
        self.guard.keep_log()
    }

    /// The last `max_bytes` of the controller's log.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        self.guard.log_tail(max_bytes)
    }

    /// Stops the controller (also done on drop).
    pub fn stop(&mut self) {
        self.guard.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_flags_keep_their_order() {
        let args = PassthroughArgs {
            kube_api_qps: Some(100.0),
            kube_api_burst: None,
            extra_args: vec!["--log-level=debug".into()],
            crds: None,
        };
        assert_eq!(args.to_flags(), ["--kube-api-qps=100", "--log-level=debug"]);
        assert!(PassthroughArgs::default().to_flags().is_empty());
    }
}
