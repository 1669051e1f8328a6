//! The Receiver reconciler: reads the token Secret and publishes `status.webhookPath`.

use std::sync::Arc;

use sluice_api::duration::format_duration;
use sluice_api::meta::reason;
use sluice_api::notification::{Receiver, ReceiverType, TOKEN_NOT_FOUND_REASON};
use sluice_runtime::lifecycle::{self, Policy, ReadyRule, Reconciler};
use sluice_runtime::{ControllerRunner, Failure, Lifecycle, ObjectEvent, Outcome, RuntimeContext};
use sluice_secrets::{SecretError, read_secret};

use super::{TOKEN_KEY, webhook_path};

/// Reason of a Receiver that uses a feature Sluice does not implement.
pub const UNSUPPORTED_REASON: &str = "UnsupportedFeature";

/// Receiver on the shared lifecycle.
pub struct ReceiverReconciler {
    runtime: RuntimeContext,
    policy: Policy<Receiver>,
}

impl ReceiverReconciler {
    /// A reconciler writing status as the runtime's controller.
    pub fn new(runtime: RuntimeContext) -> Self {
        let policy = Policy {
            status_manager: runtime.controller_name.clone(),
            ready: ReadyRule::Outcome {
                reason: reason::SUCCEEDED,
                message: initialized,
            },
            metric_conditions: &[],
            announce_new_generation: true,
        };
        Self { runtime, policy }
    }
}

fn initialized(receiver: &Receiver) -> String {
    let path = receiver
        .status
        .as_ref()
        .and_then(|status| status.webhook_path.as_deref())
        .unwrap_or_default();
    format!("Receiver initialized for path: {path}")
}

impl Reconciler<Receiver> for ReceiverReconciler {
    fn runtime(&self) -> &RuntimeContext {
        &self.runtime
    }

    fn policy(&self) -> &Policy<Receiver> {
        &self.policy
    }

    async fn reconcile(
        &self,
        receiver: &mut Receiver,
        lifecycle: &Lifecycle<'_, Receiver>,
    ) -> Outcome {
        if let Some(unsupported) = unsupported_feature(receiver) {
            clear_path(receiver);
            return Outcome::stalled(UNSUPPORTED_REASON, unsupported);
        }
        match token(&self.runtime, receiver).await {
            Ok(token) => {
                let path = webhook_path(receiver, &token);
                let status = receiver.status.get_or_insert_with(Default::default);
                if status.webhook_path.as_deref() != Some(path.as_str()) {
                    tracing::info!(
                        namespace = receiver.metadata.namespace.as_deref().unwrap_or_default(),
                        name = receiver.metadata.name.as_deref().unwrap_or_default(),
                        path,
                        "receiver initialized"
                    );
                    status.webhook_path = Some(path);
                }
                // A Kubernetes Event only, as Flux records it (never sent to --events-addr).
                let interval = format_duration(receiver.effective_interval());
                lifecycle.publish_after_status(ObjectEvent::trace(
                    reason::SUCCEEDED,
                    format!("Reconciliation finished, next run in {interval}"),
                ));
                Outcome::Success
            }
            Err(message) => {
                clear_path(receiver);
                Outcome::Retry(Failure::new(TOKEN_NOT_FOUND_REASON, message))
            }
        }
    }
}

fn clear_path(receiver: &mut Receiver) {
    receiver
        .status
        .get_or_insert_with(Default::default)
        .webhook_path = None;
}

/// What a Receiver asks for that Sluice does not implement yet, if anything.
fn unsupported_feature(receiver: &Receiver) -> Option<String> {
    if receiver.spec.type_ == ReceiverType::GenericOidc {
        return Some("receiver type 'generic-oidc' is not supported by Sluice yet".to_owned());
    }
    let filtered = receiver.spec.resource_filter.is_some()
        || receiver.spec.resources.iter().any(|r| r.filter.is_some());
    filtered.then(|| {
        "CEL filters (spec.resourceFilter, spec.resources[].filter) are not supported by Sluice yet"
            .to_owned()
    })
}

/// The raw `token` of the Receiver's Secret, or a message naming what is missing (never a value).
pub(super) async fn token(
    runtime: &RuntimeContext,
    receiver: &Receiver,
) -> Result<Vec<u8>, String> {
    let namespace = receiver.metadata.namespace.as_deref().unwrap_or_default();
    let Some(secret_ref) = &receiver.spec.secret_ref else {
        return Err("spec.secretRef is not set; it is required for this receiver type".to_owned());
    };
    let secret = read_secret(&runtime.client, namespace, &secret_ref.name)
        .await
        .map_err(|error| match error {
            SecretError::NotFound { .. } => format!(
                "unable to read token from secret '{namespace}/{}': not found",
                secret_ref.name
            ),
            other => other.to_string(),
        })?;
    secret.bytes(TOKEN_KEY).map(<[u8]>::to_vec).ok_or_else(|| {
        format!(
            "invalid '{namespace}/{}' secret data: required field 'token'",
            secret_ref.name
        )
    })
}

/// Reconciles Receivers in the watched namespaces until shutdown.
pub async fn run_controller(runtime: RuntimeContext) {
    let api = runtime.watched_api::<Receiver>();
    let reconciler = ReceiverReconciler::new(runtime.clone());
    ControllerRunner::new("receiver", api, &runtime)
        .run(lifecycle::reconcile, Arc::new(reconciler))
        .await;
}
