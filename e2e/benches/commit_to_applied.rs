//! Commit-to-applied latency of the GitOps loop with both controllers as processes: after each
//! push, annotate the GitRepository with `reconcile.fluxcd.io/requestedAt` (as a webhook receiver
//! does) and time until the new ConfigMap value is in the cluster. Prints p50/p95 over 50 pushes.
//!
//! Needs release controllers: `cargo build --release -p source-controller -p kustomize-controller`,
//! then `cargo bench -p sluice-e2e --bench commit_to_applied`.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{
    self, APP, AppLoop, Controller, Controllers, Scope, app_configmap, main_revision,
};
use sluice_e2e::{ControlPlane, Mode};

const PUSHES: usize = 50;
const POLL: Duration = Duration::from_millis(5);
const TIMEOUT: Duration = Duration::from_secs(60);

/// Latencies of one push, measured from the end of `git push`.
struct Sample {
    stored: Duration,
    applied: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut profile = String::new();
    for controller in Controller::ALL {
        let path = gitops::controller_binary(controller)?;
        eprintln!("using {}", path.display());
        profile = path
            .parent()
            .and_then(|dir| dir.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    eprintln!("starting the control plane (etcd + kube-apiserver)...");
    let plane = ControlPlane::start(Mode::ApiOnly).await?;
    plane.install_crds().await?;
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let dir = plane.dir().join("controllers");
    let controllers = tokio::task::spawn_blocking(move || {
        Controllers::start(&kubeconfig, &dir, Scope::AllNamespaces)
    })
    .await??;
    let namespace = plane.namespace("bench").await?;
    let git = GitServer::builder().start()?;
    let app = AppLoop::create(&plane, &namespace, &git, "push-0", "1h", "1h").await?;
    let first = main_revision(&git.head(APP, "main")?);
    app.wait_applied(&first, Duration::from_secs(120))
        .await
        .map_err(|state| anyhow!("the first revision was not applied: {state}"))?;

    let mut samples = Vec::with_capacity(PUSHES);
    for push in 1..=PUSHES {
        let message = format!("push-{push}");
        let sha = git.commit(
            APP,
            "main",
            [("app/configmap.yaml", app_configmap(&message))],
            &message,
        )?;
        let revision = main_revision(&sha);
        let pushed = Instant::now();
        gitops::request_reconcile(&app.repositories, APP).await?;
        let (stored, applied) = app
            .time_until_applied(&revision, &message, pushed, TIMEOUT, POLL)
            .await
            .map_err(|timeout| anyhow!("{timeout}\n{}", controllers.log_tails()))?;
        app.wait_applied(&revision, TIMEOUT)
            .await
            .map_err(|state| anyhow!("{revision} not in the Kustomization status: {state}"))?;
        samples.push(Sample { stored, applied });
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "commit-to-applied over {PUSHES} pushes ({cores} cores, {profile} controllers, poll {POLL:?}):"
    );
    print_stats(
        "artifact stored (GitRepository status)",
        samples.iter().map(|s| s.stored),
    );
    print_stats(
        "applied (ConfigMap value in the cluster)",
        samples.iter().map(|s| s.applied),
    );
    drop(controllers);
    Ok(())
}

fn print_stats(what: &str, durations: impl Iterator<Item = Duration>) {
    let mut sorted: Vec<Duration> = durations.collect();
    sorted.sort();
    let percentile = |q: f64| {
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "  {what:<42} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms",
        ms(percentile(0.50)),
        ms(percentile(0.95)),
        ms(sorted.last().copied().unwrap_or_default()),
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
