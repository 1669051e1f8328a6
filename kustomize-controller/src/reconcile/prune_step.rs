//! Step 5: the pruned set: with `spec.prune`, objects of the last inventory that left the build
//! are deleted (only those still labelled as ours and not opted out).

use sluice_api::kustomize::Kustomization;
use sluice_api::meta::reason;
use sluice_runtime::Outcome;

use super::apply_step::owner;
use crate::apply::ApplyReport;
use crate::cluster::Cluster;
use crate::inventory::{self, PruneReport};

/// Deletes the stale entries of the previous inventory that `change_set` no longer contains.
pub async fn prune(ks: &Kustomization, cluster: &Cluster, change_set: &ApplyReport) -> PruneReport {
    if !ks.spec.prune {
        return PruneReport::default();
    }
    let previous = ks
        .status
        .as_ref()
        .and_then(|status| status.inventory.clone())
        .unwrap_or_default();
    let stale = inventory::stale(&previous, &inventory::from_changes(&change_set.changes));
    if stale.is_empty() {
        return PruneReport::default();
    }
    inventory::delete_entries(cluster, &stale, &owner(ks), None).await
}

/// Fails the reconcile when an object could not be deleted, listing each with its reason.
pub fn check(pruned: &PruneReport) -> Result<(), Outcome> {
    if pruned.failed.is_empty() {
        return Ok(());
    }
    Err(Outcome::retry(
        reason::PRUNE_FAILED,
        format!("pruning failed: {}", pruned.describe_failures()),
    ))
}
