//! The fault campaign's checker: waits until a run settles, then compares the cluster, the
//! Kustomization's status and its inventory with the build of the last good revision.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use sluice_api::kustomize::{Kustomization, labels};
use sluice_api::source::GitRepository;

use crate::gitops::{self, ready_condition};
use crate::poll::eventually;

/// Name of each run's GitRepository and Kustomization.
pub const NAME: &str = "app";
/// The ConfigMap every namespace gets from kube-controller-manager (not ours).
const ROOT_CA: &str = "kube-root-ca.crt";

/// Waits until source-controller stored `head` and kustomize-controller finished with it:
/// Ready=True having applied it when `good`, else Ready=False having attempted it.
pub async fn settle(
    repositories: &Api<GitRepository>,
    kustomizations: &Api<Kustomization>,
    head: &str,
    good: bool,
    timeout: Duration,
) -> Result<(), String> {
    let what = format!("the run to settle at {head} (good: {good})");
    eventually(&what, timeout, Duration::from_millis(200), || async {
        let repo = repositories.get(NAME).await.map_err(|e| e.to_string())?;
        let stored = repo.status.as_ref().and_then(|s| s.artifact.as_ref());
        if stored.map(|a| a.revision.as_str()) != Some(head) {
            return Err(gitops::describe_git_repository(&repo));
        }
        let ks = kustomizations.get(NAME).await.map_err(|e| e.to_string())?;
        if settled(&ks, head, good) {
            Ok(())
        } else {
            Err(gitops::describe_kustomization(&ks))
        }
    })
    .await
    .map_err(|timeout| timeout.to_string())
}

/// Whether the Kustomization is done with `head` as [`settle`] describes.
fn settled(ks: &Kustomization, head: &str, good: bool) -> bool {
    if good {
        return gitops::kustomization_ready_at(ks, head);
    }
    let Some(status) = ks.status.as_ref() else {
        return false;
    };
    let failed = ready_condition(&status.conditions).is_some_and(|c| c.status == "False");
    failed
        && status.last_attempted_revision.as_deref() == Some(head)
        && status.observed_generation == ks.metadata.generation
}

/// Every invariant broken by the current state, one line each (empty: all hold).
///
/// `good` maps each good revision pushed to its ConfigMaps (name → `data.v`); `head` is the
/// last revision pushed.
pub async fn violations(
    client: &kube::Client,
    namespace: &str,
    good: &BTreeMap<String, BTreeMap<String, String>>,
    head: &str,
) -> Result<Vec<String>, kube::Error> {
    let mut found = Vec::new();
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), namespace);
    let ks = kustomizations.get(NAME).await?;
    let status = ks.status.clone().unwrap_or_default();
    let applied = status.last_applied_revision.clone().unwrap_or_default();
    let Some(expected) = good.get(&applied) else {
        found.push(format!(
            "lastAppliedRevision {applied:?} is not a good revision that was pushed"
        ));
        return Ok(found);
    };
    if good.contains_key(head) && applied != head {
        found.push(format!("head {head} is good but {applied} is applied"));
    }
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut cluster = BTreeMap::new();
    for cm in configmaps.list(&ListParams::default()).await?.items {
        let name = cm.metadata.name.clone().unwrap_or_default();
        if name == ROOT_CA {
            continue;
        }
        let owner = cm.metadata.labels.as_ref().and_then(|l| {
            Some((
                l.get(labels::NAME)?.as_str(),
                l.get(labels::NAMESPACE)?.as_str(),
            ))
        });
        if owner != Some((NAME, namespace)) {
            found.push(format!("ConfigMap {name} lacks the Kustomization's labels"));
        }
        if cm.metadata.deletion_timestamp.is_some() {
            found.push(format!("ConfigMap {name} is being deleted"));
        }
        let value = cm
            .data
            .and_then(|d| d.get("v").cloned())
            .unwrap_or_default();
        cluster.insert(name, value);
    }
    compare_objects(&mut found, expected, &cluster, &applied);
    let entries = status.inventory.map(|i| i.entries).unwrap_or_default();
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    if unique.len() != ids.len() {
        found.push(format!("duplicate inventory entries: {ids:?}"));
    }
    let id_of = |name: &String| format!("{namespace}_{name}__ConfigMap");
    let want: BTreeSet<String> = expected.keys().map(id_of).collect();
    let have: BTreeSet<String> = unique.iter().map(|id| id.to_string()).collect();
    let existing: BTreeSet<String> = cluster.keys().map(id_of).collect();
    if !inventory_holds(&have, &want, &existing, good.contains_key(head)) {
        found.push(format!("inventory {have:?}, expected {want:?}"));
    }
    if let Some(entry) = entries.iter().find(|e| e.version != "v1") {
        found.push(format!(
            "inventory entry {} has version {}",
            entry.id, entry.version
        ));
    }
    Ok(found)
}

/// Whether the inventory `have` is right for the applied objects `want`. With a good head it
/// is exactly `want`. With a bad head it may also list objects that do not exist: kustomize-
/// controller writes the inventory ahead of an apply, and a kill before the apply's own status
/// write leaves those entries until the next good revision is applied (pruning skips them).
fn inventory_holds(
    have: &BTreeSet<String>,
    want: &BTreeSet<String>,
    existing: &BTreeSet<String>,
    head_good: bool,
) -> bool {
    if head_good {
        return have == want;
    }
    want.is_subset(have) && have.difference(want).all(|id| !existing.contains(id))
}

/// Adds a line per ConfigMap missing (pruned), extra (orphan) or with other data than `expected`.
fn compare_objects(
    found: &mut Vec<String>,
    expected: &BTreeMap<String, String>,
    cluster: &BTreeMap<String, String>,
    applied: &str,
) {
    for (name, value) in expected {
        match cluster.get(name) {
            None => found.push(format!("ConfigMap {name} of {applied} is missing")),
            Some(have) if have != value => found.push(format!(
                "ConfigMap {name} has v={have:?}, {applied} has {value:?}"
            )),
            Some(_) => {}
        }
    }
    for name in cluster.keys().filter(|n| !expected.contains_key(*n)) {
        found.push(format!("orphan ConfigMap {name}: not in {applied}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn entries_written_ahead_are_allowed_only_for_missing_objects_under_a_bad_head() {
        let want = ids(&["a", "b"]);
        let existing = ids(&["a", "b"]);
        assert!(inventory_holds(&want, &want, &existing, true));
        let ahead = ids(&["a", "b", "c"]);
        assert!(
            !inventory_holds(&ahead, &want, &existing, true),
            "good head: exact"
        );
        assert!(inventory_holds(&ahead, &want, &existing, false));
        let orphan_listed = ids(&["a", "b", "c"]);
        let with_c = ids(&["a", "b", "c"]);
        assert!(
            !inventory_holds(&orphan_listed, &want, &with_c, false),
            "an existing object outside the applied revision is not an entry written ahead"
        );
        assert!(
            !inventory_holds(&ids(&["a"]), &want, &existing, false),
            "b untracked"
        );
    }
}
