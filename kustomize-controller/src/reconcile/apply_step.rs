//! Step 4: the change set: the inventory written ahead of the apply, server-side apply of the
//! build on the target cluster, the drift watch of what was applied, the detect-only drift
//! report, and the change-set event.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::Value;
use sluice_api::FluxObject;
use sluice_api::duration::format_duration;
use sluice_api::kustomize::{Kustomization, ResourceInventory, ResourceRef};
use sluice_api::meta::reason;
use sluice_runtime::conditions;
use sluice_runtime::{ConditionStatus, Lifecycle, ObjectEvent, Outcome};

use super::Context;
use crate::apply::{Action, ApplyOptions, ApplyReport, Change, FIELD_MANAGER, apply_staged};
use crate::cleanup::Cleanup;
use crate::cluster::Cluster;
use crate::drift::DriftMode;
use crate::ignore::IgnoreRules;
use crate::inventory::{self, PruneReport};
use crate::objects::{Owner, object_id, split_api_version};

/// Condition type set while a detect-only Kustomization has drifted objects.
pub const DRIFTED: &str = "Drifted";
/// Reason of the [`DRIFTED`] condition and of its warning event.
pub const DRIFT_DETECTED: &str = "DriftDetected";
/// How long CRDs, Namespaces and classes may take to become ready during apply.
const STAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The cluster to apply to: impersonating the ServiceAccount, or remote through `kubeConfig`.
pub async fn target_cluster(context: &Context, ks: &Kustomization) -> Result<Cluster, Outcome> {
    context.tenancy.cluster_for(ks).await.map_err(|error| {
        if error.is_permanent() {
            Outcome::stalled(reason::RECONCILIATION_FAILED, error.to_string())
        } else {
            Outcome::retry(reason::RECONCILIATION_FAILED, error.to_string())
        }
    })
}

/// The objects' owner: the Kustomization, by name and namespace.
pub fn owner(ks: &Kustomization) -> Owner {
    Owner {
        name: ks.name_any(),
        namespace: ks.namespace().unwrap_or_default(),
    }
}

/// Applies `objects` within `timeout` and watches the applied kinds for drift.
pub async fn apply(
    context: &Context,
    ks: &Kustomization,
    cluster: &Cluster,
    objects: Vec<Value>,
    revision: &str,
    timeout: Duration,
) -> Result<ApplyReport, Outcome> {
    let already_applied = ks
        .status
        .as_ref()
        .is_some_and(|status| status.last_applied_revision.as_deref() == Some(revision))
        && ks.observed_generation() == ks.metadata.generation;
    let ignore = IgnoreRules::compile(&ks.spec.ignore)
        .map_err(|error| Outcome::stalled(reason::RECONCILIATION_FAILED, error.to_string()))?;
    let options = ApplyOptions {
        owner: owner(ks),
        force: ks.spec.force,
        correct_drift: !(already_applied && DriftMode::of(ks) == DriftMode::DetectOnly),
        concurrency: usize::from(context.flags.concurrent_ssa),
        stage_timeout: STAGE_TIMEOUT.min(timeout),
        ignore: Arc::new(ignore),
        cleanup: Cleanup::new(FIELD_MANAGER, &context.flags.override_manager),
        custom_stage_kinds: context.flags.custom_stage_kinds(),
    };
    let Ok(change_set) =
        tokio::time::timeout(timeout, apply_staged(cluster, objects, &options)).await
    else {
        return Err(Outcome::retry(
            reason::RECONCILIATION_FAILED,
            format!(
                "apply did not finish within the timeout of {}",
                format_duration(timeout)
            ),
        ));
    };
    track_drift(context, ks, cluster, &change_set.changes).await;
    Ok(change_set)
}

/// The inventory to record before applying `objects`: the recorded one plus the objects it
/// does not list yet; `None` when it lists them all.
pub fn inventory_ahead(ks: &Kustomization, objects: &[Value]) -> Option<ResourceInventory> {
    let recorded = ks
        .status
        .as_ref()
        .and_then(|status| status.inventory.clone())
        .unwrap_or_default();
    let new: Vec<ResourceRef> = objects
        .iter()
        .map(|object| ResourceRef {
            id: object_id(object).to_string(),
            version: split_api_version(object["apiVersion"].as_str().unwrap_or_default())
                .1
                .to_owned(),
        })
        .filter(|entry| !recorded.entries.iter().any(|known| known.id == entry.id))
        .collect();
    (!new.is_empty()).then(|| inventory::merge(&recorded, &new))
}

/// Writes `inventory` to the status before the apply, so that a controller stopped between the
/// apply and its final status write leaves no object it does not track (the final write then
/// records exactly what was applied).
pub async fn record_inventory_ahead(
    lifecycle: &Lifecycle<'_, Kustomization>,
    ks: &Kustomization,
    inventory: &ResourceInventory,
) -> Result<(), Outcome> {
    let mut ahead = ks.clone();
    ahead.status.get_or_insert_with(Default::default).inventory = Some(inventory.clone());
    lifecycle.write_status(&ahead).await.map_err(|error| {
        Outcome::retry(
            reason::RECONCILIATION_FAILED,
            format!("recording the inventory before the apply failed: {error}"),
        )
    })
}

/// Fails the reconcile when an object could not be applied, listing every error with the
/// `secret_values` (the apiserver echoes invalid values) replaced by `***`.
pub fn check(change_set: &ApplyReport, secret_values: &[String]) -> Result<(), Outcome> {
    if change_set.errors.is_empty() {
        return Ok(());
    }
    let message = change_set
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Err(Outcome::retry(
        reason::RECONCILIATION_FAILED,
        sluice_secrets::redact(&message, secret_values),
    ))
}

/// Records this apply's writes and watches the applied kinds (local cluster only).
async fn track_drift(context: &Context, ks: &Kustomization, cluster: &Cluster, changes: &[Change]) {
    if !context.flags.watch_drift || ks.spec.kube_config.is_some() {
        return;
    }
    let mut resources: Vec<ApiResource> = Vec::new();
    for change in changes {
        let (group, version) =
            split_api_version(change.desired["apiVersion"].as_str().unwrap_or_default());
        let gvk = GroupVersionKind::gvk(group, version, &change.id.kind);
        if let Ok(resolved) = cluster.resolve(&gvk).await
            && !resources.contains(&resolved.resource)
        {
            resources.push(resolved.resource);
        }
    }
    context.drift.track(changes, &resources);
}

/// Sets or clears `Drifted` from the objects left drifted, and warns when the list changes.
pub async fn report_drift(
    context: &Context,
    ks: &mut Kustomization,
    changes: &[Change],
    revision: &str,
) {
    let drifted: Vec<String> = changes
        .iter()
        .filter(|change| change.action == Action::Drifted)
        .map(|change| change.subject.clone())
        .collect();
    let generation = ks.metadata.generation;
    let list = ks.conditions_mut();
    let previously = conditions::get(list, DRIFTED).map(|condition| condition.message.clone());
    if drifted.is_empty() {
        conditions::remove(list, DRIFTED);
        return;
    }
    conditions::set(
        list,
        DRIFTED,
        ConditionStatus::True,
        DRIFT_DETECTED,
        format!(
            "Drift detected (not corrected, detect-only mode): {}",
            drifted.join(", ")
        ),
        generation,
    );
    if conditions::get(list, DRIFTED).map(|condition| &condition.message) == previously.as_ref() {
        return;
    }
    let event = ObjectEvent::error(
        DRIFT_DETECTED,
        format!(
            "Drift detected (detect-only, not corrected):\n{}",
            drifted.join("\n")
        ),
    )
    .with_revision(revision.to_owned());
    context.runtime.events.publish(&*ks, event).await;
}

/// Announces created, configured and deleted objects in one `Progressing` event, as Flux does.
pub async fn publish_change_set(
    context: &Context,
    ks: &Kustomization,
    change_set: &ApplyReport,
    pruned: &PruneReport,
    revision: &str,
) {
    let mut lines: Vec<String> = change_set
        .changes
        .iter()
        .filter(|change| matches!(change.action, Action::Created | Action::Configured))
        .map(|change| format!("{} {}", change.subject, change.action.as_str()))
        .collect();
    lines.extend(
        pruned
            .deleted
            .iter()
            .map(|deleted| format!("{deleted} deleted")),
    );
    if lines.is_empty() {
        return;
    }
    let event = ObjectEvent::info(reason::PROGRESSING, lines.join("\n")).with_revision(revision);
    context.runtime.events.publish(ks, event).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::ApplyError;

    #[test]
    fn apply_errors_never_carry_values_substituted_from_secrets() {
        let report = ApplyReport {
            changes: Vec::new(),
            errors: vec![ApplyError::Invalid {
                subject: "Service/ns/app".into(),
                reason: "spec.type: Unsupported value: \"hunter2-type\"".into(),
            }],
        };
        let outcome = check(&report, &["hunter2-type".into()]);
        assert_eq!(
            outcome,
            Err(Outcome::retry(
                reason::RECONCILIATION_FAILED,
                "Service/ns/app: spec.type: Unsupported value: \"***\""
            ))
        );
    }
}
