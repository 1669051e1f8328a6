//! The ImageUpdateAutomation reconciler on the shared lifecycle, triggered by its interval,
//! `reconcile.fluxcd.io/requestedAt` and changes of ImagePolicies' `latestRef`.

pub mod automation;
pub mod policies;
pub mod source;
mod watches;

use std::sync::Arc;

use kube::runtime::watcher;
use sluice_api::image::{ImagePolicy, ImageUpdateAutomation};
use sluice_api::meta::reason;
use sluice_api::source::GitRepository;
use sluice_runtime::lifecycle::{self, Policy, ReadyRule, Reconciler};
use sluice_runtime::{ControllerRunner, Lifecycle, Outcome, RuntimeContext, backing_off};

/// Clones and pushes per run when pushes are rejected because the remote moved.
pub const MAX_PUSH_ATTEMPTS: u32 = 3;

/// Flux's image-automation reasons not in `sluice_api::meta::reason`.
pub mod reasons {
    pub const INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
    pub const INVALID_SOURCE_CONFIGURATION: &str = "InvalidSourceConfiguration";
    pub const SOURCE_MANAGER_FAILED: &str = "SourceManagerFailed";
    pub const UPDATE_FAILED: &str = "UpdateFailed";
    pub const INVALID_POLICY_SELECTOR: &str = "InvalidPolicySelector";
    pub const REMOVED_TEMPLATE_FIELD: &str = "RemovedTemplateField";
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
}

/// The controller's own settings (the runtime flags live in [`RuntimeContext`]).
#[derive(Debug, Clone)]
pub struct AutomationFlags {
    /// Refuse automations referring to GitRepositories in other namespaces.
    pub no_cross_namespace_refs: bool,
}

/// Everything a reconcile needs.
pub struct AutomationContext {
    pub runtime: RuntimeContext,
    pub flags: AutomationFlags,
}

/// Flux's Ready message for an automation that ran.
fn up_to_date(_: &ImageUpdateAutomation) -> String {
    "repository up-to-date".to_owned()
}

/// ImageUpdateAutomation on the shared lifecycle.
pub struct AutomationReconciler {
    context: Arc<AutomationContext>,
    policy: Policy<ImageUpdateAutomation>,
}

impl AutomationReconciler {
    pub fn new(context: Arc<AutomationContext>) -> Self {
        let policy = Policy {
            status_manager: context.runtime.controller_name.clone(),
            ready: ReadyRule::Outcome {
                reason: reason::SUCCEEDED,
                message: up_to_date,
            },
            metric_conditions: &[],
            announce_new_generation: true,
        };
        Self { context, policy }
    }
}

impl Reconciler<ImageUpdateAutomation> for AutomationReconciler {
    fn runtime(&self) -> &RuntimeContext {
        &self.context.runtime
    }

    fn policy(&self) -> &Policy<ImageUpdateAutomation> {
        &self.policy
    }

    async fn reconcile(
        &self,
        object: &mut ImageUpdateAutomation,
        lifecycle: &Lifecycle<'_, ImageUpdateAutomation>,
    ) -> Outcome {
        match automation::reconcile(&self.context, object, lifecycle).await {
            Ok(()) => Outcome::Success,
            Err(outcome) => outcome,
        }
    }
}

/// Runs the reconciler until shutdown, with the ImagePolicy `latestRef` and GitRepository
/// spec triggers.
pub async fn run_controller(context: Arc<AutomationContext>) {
    let runtime = &context.runtime;
    let policies: kube::Api<ImagePolicy> = runtime.watched_api();
    let sources: kube::Api<GitRepository> = runtime.watched_api();
    ControllerRunner::new("imageupdateautomation", runtime.watched_api(), runtime)
        .customize(move |controller| {
            let latest = watches::LatestRefTrigger::new(controller.store());
            let source = watches::SourceTrigger::new(controller.store());
            controller
                .watches_stream(
                    backing_off(policies.clone(), watcher::Config::default()),
                    move |policy| latest.automations_to_run(&policy),
                )
                .watches_stream(
                    backing_off(sources.clone(), watcher::Config::default()),
                    move |repository| source.automations_to_run(&repository),
                )
        })
        .run(
            lifecycle::reconcile,
            Arc::new(AutomationReconciler::new(context.clone())),
        )
        .await;
    context.runtime.events.flush().await;
}
