//! image-automation-controller binary: Flux's flags and the ImageUpdateAutomation reconciler.

use std::sync::Arc;

use anyhow::Context;
use clap::{ArgAction, Parser};
use image_automation::CONTROLLER_NAME;
use image_automation::reconcile::{AutomationContext, AutomationFlags, run_controller};
use sluice_runtime::{RuntimeContext, RuntimeFlags, init_logging};

/// Flux-compatible image-automation-controller.
#[derive(Debug, Parser)]
#[command(name = "image-automation-controller", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeFlags,

    /// Deny automations referring to GitRepositories in other namespaces. On by default
    /// (Flux's default is off), as in Sluice's other controllers.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    no_cross_namespace_refs: bool,

    /// Accepted for Flux compatibility (`GitForcePushBranch=true,...`); Sluice behaves as Flux's
    /// defaults (force-push to a push branch other than the checkout branch, shallow clones).
    #[arg(long, default_value = "")]
    feature_gates: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.runtime.log_level, cli.runtime.log_encoding).context("setting up logging")?;
    if !cli.feature_gates.is_empty() {
        tracing::warn!(gates = %cli.feature_gates, "--feature-gates is accepted but ignored");
    }
    let (runtime, tasks) = RuntimeContext::start(CONTROLLER_NAME, cli.runtime)
        .await
        .context("starting the controller runtime")?;
    tracing::info!(controller = CONTROLLER_NAME, "starting");
    let context = Arc::new(AutomationContext {
        runtime: runtime.clone(),
        flags: AutomationFlags {
            no_cross_namespace_refs: cli.no_cross_namespace_refs,
        },
    });
    run_controller(context).await;
    runtime.shutdown.trigger();
    tasks.finished().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_flux_names_and_defaults() {
        let cli = Cli::parse_from(["image-automation-controller"]);
        assert!(cli.no_cross_namespace_refs);
        assert_eq!(cli.runtime.concurrent, 4);
        let cli = Cli::parse_from([
            "image-automation-controller",
            "--no-cross-namespace-refs=false",
            "--concurrent=10",
            "--feature-gates=GitForcePushBranch=true",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--enable-leader-election",
        ]);
        assert!(!cli.no_cross_namespace_refs);
        assert_eq!(cli.runtime.concurrent, 10);
        assert!(cli.runtime.enable_leader_election);
    }
}
