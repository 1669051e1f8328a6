use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use kustomize_controller::cli::Cli;
use kustomize_controller::reconcile::{CONTROLLER_NAME, Context, run};
use sluice_runtime::{RuntimeContext, init_logging};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    init_logging(cli.runtime.log_level, cli.runtime.log_encoding).context("setting up logging")?;
    for gate in cli.controller.apply_feature_gates() {
        tracing::warn!(
            gate = %gate.name,
            enabled = gate.enabled,
            "feature gate not implemented by this kustomize-controller; ignored"
        );
    }
    if let Some(problem) = cli.controller.object_level_inconsistency() {
        anyhow::bail!("invalid configuration: {problem}");
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let base_config = kube::Config::infer()
        .await
        .context("loading the Kubernetes client configuration (in-cluster or KUBECONFIG)")?;
    let (runtime, tasks) = RuntimeContext::start(CONTROLLER_NAME, cli.runtime.clone())
        .await
        .context("starting the controller runtime")?;
    let context = Context::new(runtime.clone(), cli.controller, base_config)
        .context("setting up kustomize-controller")?;
    tracing::info!(controller = CONTROLLER_NAME, "starting");
    run(Arc::new(context)).await;
    runtime.shutdown.trigger();
    runtime.events.flush().await;
    tasks.finished().await;
    Ok(())
}
