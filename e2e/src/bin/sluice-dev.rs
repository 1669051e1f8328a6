//! Starts the embedded control plane (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kwok with a fake node) with Sluice's CRDs installed, prints how to reach it,
//! and stops everything on Ctrl-C.

use anyhow::Context;
use sluice_e2e::{ControlPlane, Mode, tools};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    eprintln!(
        "starting the embedded control plane (the first run builds the Kubernetes binaries, ~25 min)..."
    );
    let plane = ControlPlane::start(Mode::Nodes)
        .await
        .context("starting the control plane")?;
    plane
        .install_crds()
        .await
        .context("installing Sluice's CRDs")?;
    let kubectl = tools::binary("kubectl").context("locating kubectl")?;
    println!("Sluice embedded control plane is up at {}", plane.server());
    println!();
    println!("  export KUBECONFIG={}", plane.kubeconfig_path().display());
    println!("  alias kubectl={}", kubectl.display());
    println!("  kubectl get nodes");
    println!("  kubectl get crds | grep toolkit.fluxcd.io");
    println!();
    println!("Component logs: {}", plane.dir().display());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("stopping...");
    drop(plane);
    Ok(())
}
