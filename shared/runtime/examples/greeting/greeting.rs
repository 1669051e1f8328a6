//! The `Greeting` kind and its reconciler: each Greeting writes `spec.message` into a ConfigMap of
//! the same name and reports it in its own `ConfigMapWritten` condition, which `Ready` summarises.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_api::FluxObject;
use sluice_api::duration::INTERVAL_PATTERN;
use sluice_api::meta::condition_type::{RECONCILING, STALLED};
use sluice_api::meta::reason::SUCCEEDED;
use sluice_runtime::conditions::{self, ConditionStatus};
use sluice_runtime::lifecycle::{self, Policy, ReadyRule, Reconciler};
use sluice_runtime::{
    ControllerRunner, Failure, Lifecycle, Outcome, RuntimeContext, describe_kube_error,
};

/// The controller's name: field manager of its writes, event reporter and Lease prefix.
pub const CONTROLLER_NAME: &str = "greeting-controller";
/// Positive-polarity condition: the ConfigMap holds the current message.
pub const CONFIG_MAP_WRITTEN: &str = "ConfigMapWritten";
/// Reason when reading, writing or deleting the ConfigMap failed.
pub const CONFIG_MAP_OPERATION_FAILED: &str = "ConfigMapOperationFailed";
/// Reason when a ConfigMap of the Greeting's name belongs to something else.
pub const CONFIG_MAP_NOT_OWNED: &str = "ConfigMapNotOwned";
/// The ConfigMap key holding the message.
pub const MESSAGE_KEY: &str = "message";

/// Writes `message` into the ConfigMap of the same name, again every `interval`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.sluice.dev",
    version = "v1alpha1",
    kind = "Greeting",
    namespaced,
    status = "GreetingStatus",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GreetingSpec {
    /// How often to reconcile, e.g. `5m`.
    #[schemars(regex(pattern = INTERVAL_PATTERN))]
    pub interval: String,
    /// Stops reconciliation while true.
    #[serde(default)]
    pub suspend: bool,
    /// The text written to the ConfigMap.
    pub message: String,
}

/// The status fields every Flux-style kind carries (see `sluice_api::impl_flux_object!`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GreetingStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

sluice_api::impl_flux_object!(Greeting, &[STALLED, RECONCILING]);

/// Runs Greetings on the shared lifecycle.
pub struct GreetingReconciler {
    runtime: RuntimeContext,
    policy: Policy<Greeting>,
}

impl GreetingReconciler {
    /// A reconciler writing status as the runtime's controller.
    pub fn new(runtime: RuntimeContext) -> Self {
        let policy = Policy {
            status_manager: runtime.controller_name.clone(),
            ready: ReadyRule::Summary {
                inputs: &[STALLED, RECONCILING, CONFIG_MAP_WRITTEN],
                after_failure: &[CONFIG_MAP_WRITTEN],
            },
            metric_conditions: &[CONFIG_MAP_WRITTEN],
            announce_new_generation: true,
        };
        Self { runtime, policy }
    }

    fn config_maps(&self, greeting: &Greeting) -> Api<ConfigMap> {
        let namespace = greeting.namespace().unwrap_or_default();
        Api::namespaced(self.runtime.client.clone(), &namespace)
    }

    /// The ConfigMap of the Greeting's name, `None` when there is none.
    async fn config_map(&self, greeting: &Greeting) -> Result<Option<ConfigMap>, Failure> {
        let name = greeting.name_any();
        self.config_maps(greeting)
            .get_opt(&name)
            .await
            .map_err(|error| config_map_failure("reading", &name, &error))
    }

    /// Server-side applies the ConfigMap with the message, owned by the Greeting; stalls when a
    /// ConfigMap of that name belongs to something else.
    async fn write_config_map(&self, greeting: &Greeting) -> Result<(), Outcome> {
        let name = greeting.name_any();
        let existing = self.config_map(greeting).await.map_err(Outcome::Retry)?;
        if existing.is_some_and(|config_map| !owned_by(&config_map, greeting)) {
            return Err(Outcome::stalled(
                CONFIG_MAP_NOT_OWNED,
                format!(
                    "ConfigMap {name} exists and is not owned by this Greeting; delete that ConfigMap or rename the Greeting"
                ),
            ));
        }
        let owner: Vec<_> = greeting.controller_owner_ref(&()).into_iter().collect();
        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "ownerReferences": owner},
            "data": {MESSAGE_KEY: greeting.spec.message},
        });
        let params = PatchParams::apply(&self.runtime.controller_name).force();
        self.config_maps(greeting)
            .patch(&name, &params, &Patch::Apply(&config_map))
            .await
            .map_err(|error| Outcome::Retry(config_map_failure("writing", &name, &error)))?;
        Ok(())
    }
}

impl Reconciler<Greeting> for GreetingReconciler {
    fn runtime(&self) -> &RuntimeContext {
        &self.runtime
    }

    fn policy(&self) -> &Policy<Greeting> {
        &self.policy
    }

    async fn reconcile(&self, greeting: &mut Greeting, _: &Lifecycle<'_, Greeting>) -> Outcome {
        let outcome = match self.write_config_map(greeting).await {
            Ok(()) => Outcome::Success,
            Err(outcome) => outcome,
        };
        let (status, reason, message) = match outcome.failure() {
            None => (
                ConditionStatus::True,
                SUCCEEDED,
                format!("wrote the message to ConfigMap {}", greeting.name_any()),
            ),
            Some(failure) => (
                ConditionStatus::False,
                failure.reason.as_str(),
                failure.message.clone(),
            ),
        };
        let generation = greeting.meta().generation;
        let list = greeting.conditions_mut();
        conditions::set(
            list,
            CONFIG_MAP_WRITTEN,
            status,
            reason,
            message,
            generation,
        );
        outcome
    }

    /// Deletes the ConfigMap if this Greeting owns it, before the finalizer is released.
    async fn cleanup(&self, greeting: &Greeting) -> Result<(), Failure> {
        let existing = self.config_map(greeting).await?;
        if !existing.is_some_and(|config_map| owned_by(&config_map, greeting)) {
            return Ok(());
        }
        let name = greeting.name_any();
        match self
            .config_maps(greeting)
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(response)) if response.code == 404 => Ok(()),
            Err(error) => Err(config_map_failure("deleting", &name, &error)),
        }
    }
}

/// Whether `greeting` is the controller owner of `config_map`.
fn owned_by(config_map: &ConfigMap, greeting: &Greeting) -> bool {
    let uid = greeting.uid();
    config_map
        .owner_references()
        .iter()
        .any(|owner| owner.controller == Some(true) && Some(&owner.uid) == uid.as_ref())
}

/// A failed ConfigMap operation, saying what failed and what to do.
fn config_map_failure(action: &str, name: &str, error: &kube::Error) -> Failure {
    let message = format!(
        "{action} ConfigMap {name} failed: {}; check the controller may get, patch and delete ConfigMaps in this namespace",
        describe_kube_error(error)
    );
    Failure::new(CONFIG_MAP_OPERATION_FAILED, message)
}

/// Reconciles Greetings in the watched namespaces until shutdown.
pub async fn run(runtime: &RuntimeContext) {
    let reconciler = Arc::new(GreetingReconciler::new(runtime.clone()));
    ControllerRunner::new("greeting", runtime.watched_api(), runtime)
        .run(lifecycle::reconcile, reconciler)
        .await;
}
