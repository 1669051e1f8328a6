//! The inventory of applied objects, and garbage collection of objects that left the build.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, GroupVersionKind, PropagationPolicy};
use serde_json::Value;
use sluice_api::kustomize::annotations::{DISABLED, PRUNE, RECONCILE, SSA, SSA_IGNORE};
use sluice_api::kustomize::{ObjectId, ResourceInventory, ResourceRef};
use sluice_runtime::describe_kube_error;

use crate::apply::Change;
use crate::cluster::Cluster;
use crate::objects::{Owner, has_flag, kind_rank};

/// How often deletion progress is polled for `WaitForTermination`.
const TERMINATION_POLL: Duration = Duration::from_secs(1);

/// The inventory of a change set, in apply order.
pub fn from_changes(changes: &[Change]) -> ResourceInventory {
    let mut entries: Vec<&Change> = changes.iter().collect();
    entries.sort_by_key(|change| {
        (
            kind_rank(&change.id.kind),
            change.id.kind.clone(),
            change.id.namespace.clone(),
            change.id.name.clone(),
        )
    });
    ResourceInventory {
        entries: entries
            .into_iter()
            .map(|change| ResourceRef {
                id: change.id.to_string(),
                version: change.version.clone(),
            })
            .collect(),
    }
}

/// Entries of `old` whose id is not in `new`.
pub fn stale(old: &ResourceInventory, new: &ResourceInventory) -> Vec<ResourceRef> {
    let current: BTreeSet<&str> = new.entries.iter().map(|entry| entry.id.as_str()).collect();
    old.entries
        .iter()
        .filter(|entry| !current.contains(entry.id.as_str()))
        .cloned()
        .collect()
}

/// `base` plus the entries of `extra` it lacks.
pub fn merge(base: &ResourceInventory, extra: &[ResourceRef]) -> ResourceInventory {
    let mut merged = base.clone();
    for entry in extra {
        if !merged
            .entries
            .iter()
            .any(|existing| existing.id == entry.id)
        {
            merged.entries.push(entry.clone());
        }
    }
    merged
}

/// Outcome of deleting inventory entries.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// `Kind/ns/name` of deleted objects.
    pub deleted: Vec<String>,
    /// Entries that could not be deleted, with the reason.
    pub failed: Vec<(ResourceRef, String)>,
}

impl PruneReport {
    /// The entries that could not be deleted; they stay in the inventory.
    pub fn survivors(&self) -> Vec<ResourceRef> {
        self.failed.iter().map(|(entry, _)| entry.clone()).collect()
    }

    /// One `id: reason` line per entry that could not be deleted.
    pub fn describe_failures(&self) -> String {
        self.failed
            .iter()
            .map(|(entry, reason)| format!("{}: {reason}", entry.id))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn describe(id: &ObjectId) -> String {
    if id.namespace.is_empty() {
        format!("{}/{}", id.kind, id.name)
    } else {
        format!("{}/{}/{}", id.kind, id.namespace, id.name)
    }
}

/// Deletes `entries` (in reverse apply order) that still carry `owner`'s labels and are not
/// opted out with the prune, reconcile or ssa annotations; with `wait`, waits until they are gone.
pub async fn delete_entries(
    cluster: &Cluster,
    entries: &[ResourceRef],
    owner: &Owner,
    wait: Option<Duration>,
) -> PruneReport {
    let mut report = PruneReport::default();
    let mut ordered: Vec<(ResourceRef, ObjectId)> = Vec::new();
    for entry in entries {
        match entry.object_id() {
            Ok(id) => ordered.push((entry.clone(), id)),
            Err(error) => report.failed.push((entry.clone(), error.to_string())),
        }
    }
    ordered.sort_by_key(|(_, id)| std::cmp::Reverse(kind_rank(&id.kind)));
    let mut waiting = Vec::new();
    for (entry, id) in ordered {
        let gvk = GroupVersionKind::gvk(&id.group, &entry.version, &id.kind);
        let resolved = match cluster.resolve(&gvk).await {
            Ok(resolved) => resolved,
            Err(error) => {
                tracing::debug!(object = %id, %error, "kind no longer served; nothing to delete");
                continue;
            }
        };
        let namespace = (!id.namespace.is_empty()).then_some(id.namespace.as_str());
        let api = cluster.api(&resolved, namespace);
        let live = match api.get_opt(&id.name).await {
            Ok(Some(live)) => serde_json::to_value(live).unwrap_or(Value::Null),
            Ok(None) => continue,
            Err(error) => {
                report.failed.push((entry, describe_kube_error(&error)));
                continue;
            }
        };
        let opted_out = has_flag(&live, PRUNE, DISABLED)
            || has_flag(&live, RECONCILE, DISABLED)
            || has_flag(&live, SSA, SSA_IGNORE);
        if !owner.owns(&live) || opted_out {
            tracing::info!(object = %id, owned = owner.owns(&live), "keeping object on prune");
            continue;
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(&id.name, &params).await {
            Ok(_) => {
                report.deleted.push(describe(&id));
                waiting.push((api, id));
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => report.failed.push((entry, describe_kube_error(&error))),
        }
    }
    if let Some(timeout) = wait {
        let started = Instant::now();
        while !waiting.is_empty() && started.elapsed() < timeout {
            let mut still = Vec::new();
            for (api, id) in waiting {
                if !matches!(api.get_opt(&id.name).await, Ok(None)) {
                    still.push((api, id));
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                tokio::time::sleep(TERMINATION_POLL).await;
            }
        }
        for (_, id) in waiting {
            tracing::warn!(object = %id, "object still terminating after the timeout");
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(ids: &[&str]) -> ResourceInventory {
        ResourceInventory {
            entries: ids
                .iter()
                .map(|id| ResourceRef {
                    id: (*id).to_owned(),
                    version: "v1".to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn stale_and_merge() {
        let old = inventory(&["ns_a__ConfigMap", "ns_b__ConfigMap"]);
        let new = inventory(&["ns_a__ConfigMap", "ns_c__ConfigMap"]);
        let gone = stale(&old, &new);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, "ns_b__ConfigMap");
        let merged = merge(&new, &gone);
        assert_eq!(merged.entries.len(), 3);
        assert_eq!(merge(&merged, &gone).entries.len(), 3);
    }
}
