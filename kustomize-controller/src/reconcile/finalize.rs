//! Cleanup on deletion: the inventory is deleted as `spec.deletionPolicy` says before the
//! lifecycle releases the finalizer; a failure keeps the finalizer and retries.

use std::time::Duration;

use kube::ResourceExt;
use sluice_api::kustomize::{DeletionPolicy, Kustomization, ResourceRef};
use sluice_api::meta::reason;
use sluice_runtime::{Failure, ObjectEvent};

use super::Context;
use super::apply_step::owner;
use super::health_step::wait_key;
use super::record::retry_interval;
use crate::inventory;

/// Event reason for objects deleted with their Kustomization.
const PRUNED: &str = "Pruned";
/// How long `WaitForTermination` waits when `spec.timeout` cannot be parsed.
const FALLBACK_TERMINATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `deletionPolicy` (and `prune`, for `MirrorPrune`) deletes the inventory.
fn deletes_inventory(ks: &Kustomization) -> bool {
    match ks.effective_deletion_policy() {
        DeletionPolicy::MirrorPrune => ks.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    }
}

/// Deletes the inventory of a deleted Kustomization (unless orphaned or suspended) and
/// forgets its pending health check and health wait.
pub async fn cleanup(context: &Context, ks: &Kustomization) -> Result<(), Failure> {
    let entries = ks
        .status
        .as_ref()
        .and_then(|status| status.inventory.as_ref())
        .map(|inventory| inventory.entries.clone())
        .unwrap_or_default();
    if deletes_inventory(ks) && !ks.spec.suspend && !entries.is_empty() {
        delete_inventory(context, ks, &entries).await?;
    }
    context.health_waits.forget(&wait_key(ks));
    let namespace = ks.metadata.namespace.as_deref().unwrap_or_default();
    context.drift.await_health(namespace, &ks.name_any(), false);
    context.drift.take_drift(namespace, &ks.name_any());
    Ok(())
}

async fn delete_inventory(
    context: &Context,
    ks: &Kustomization,
    entries: &[ResourceRef],
) -> Result<(), Failure> {
    let events = &context.runtime.events;
    let cluster = match context.tenancy.cluster_for(ks).await {
        Ok(cluster) => cluster,
        Err(error) => {
            let message = format!("skipping deletion of the inventory: {error}");
            events
                .publish(ks, ObjectEvent::error(reason::PRUNE_FAILED, message))
                .await;
            return Ok(());
        }
    };
    let wait = (ks.effective_deletion_policy() == DeletionPolicy::WaitForTermination).then(|| {
        ks.effective_timeout()
            .unwrap_or(FALLBACK_TERMINATION_TIMEOUT)
    });
    let report = inventory::delete_entries(&cluster, entries, &owner(ks), wait).await;
    if !report.failed.is_empty() {
        return Err(Failure::new(
            reason::PRUNE_FAILED,
            format!(
                "deleting the inventory failed; retrying: {}",
                report.describe_failures()
            ),
        )
        .retry_after(retry_interval(ks)));
    }
    if !report.deleted.is_empty() {
        let deleted: Vec<String> = report
            .deleted
            .iter()
            .map(|object| format!("{object} deleted"))
            .collect();
        events
            .publish(ks, ObjectEvent::info(PRUNED, deleted.join("\n")))
            .await;
    }
    Ok(())
}
