//! Output order: kustomize's "legacy" order by default (namespaces, then CRDs, RBAC, config,
//! services, workloads, ..., webhooks last), or input order with `sortOptions: {order: fifo}`.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::kustomization::SortOptions;
use crate::resource::{Gvk, Resource};

const ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Sorts resources in place by the kustomization's sort options (legacy order when unset).
pub(crate) fn sort(
    resources: &mut Vec<Resource>,
    options: Option<&SortOptions>,
    file: &std::path::Path,
) -> Result<()> {
    let (first, last): (Vec<String>, Vec<String>) = match options {
        None => (
            ORDER_FIRST.map(String::from).to_vec(),
            ORDER_LAST.map(String::from).to_vec(),
        ),
        Some(options) => match (options.order.as_str(), &options.legacy) {
            ("fifo", None) => return Ok(()),
            ("fifo", Some(_)) => {
                return Err(Error::invalid(
                    file,
                    "sortOptions.legacySortOptions",
                    "is set but the selected sort order is 'fifo', not 'legacy'",
                ));
            }
            ("legacy", Some((first, last))) => (first.clone(), last.clone()),
            ("legacy", None) => (
                ORDER_FIRST.map(String::from).to_vec(),
                ORDER_LAST.map(String::from).to_vec(),
            ),
            _ => {
                return Err(Error::invalid(
                    file,
                    "sortOptions.order",
                    "must be one of [fifo, legacy]",
                ));
            }
        },
    };
    let mut rank: HashMap<String, i64> = HashMap::new();
    let count = i64::try_from(first.len()).unwrap_or(i64::MAX);
    for (i, kind) in first.iter().enumerate() {
        rank.insert(kind.clone(), i64::try_from(i).unwrap_or(i64::MAX) - count);
    }
    for (i, kind) in last.iter().enumerate() {
        rank.insert(kind.clone(), i64::try_from(i).unwrap_or(i64::MAX) + 1);
    }
    let mut keyed: Vec<(Gvk, String, Resource)> = Vec::with_capacity(resources.len());
    for resource in resources.drain(..) {
        let id = resource.cur_id();
        let namespace = if id.namespace.is_empty() {
            "~X".to_string()
        } else {
            id.namespace
        };
        let name = if id.name.is_empty() {
            "~N".to_string()
        } else {
            id.name
        };
        keyed.push((id.gvk, format!("{namespace}|{name}"), resource));
    }
    keyed.sort_by(|a, b| {
        if a.0 != b.0 {
            compare_gvk(&a.0, &b.0, &rank)
        } else {
            a.1.cmp(&b.1)
        }
    });
    resources.extend(keyed.into_iter().map(|(_, _, resource)| resource));
    Ok(())
}

fn compare_gvk(a: &Gvk, b: &Gvk, rank: &HashMap<String, i64>) -> Ordering {
    let ra = rank.get(&a.kind).copied().unwrap_or(0);
    let rb = rank.get(&b.kind).copied().unwrap_or(0);
    if ra != rb {
        return ra.cmp(&rb);
    }
    let key = |g: &Gvk| {
        let or = |s: &str, empty: &str| {
            if s.is_empty() {
                empty.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "{}_{}_{}",
            or(&g.group, "~G"),
            or(&g.version, "~V"),
            or(&g.kind, "~K")
        )
    };
    if a.kind == "Namespace" && b.kind == "Namespace" && (a.group.is_empty() || b.group.is_empty())
    {
        key(b).cmp(&key(a))
    } else {
        key(a).cmp(&key(b))
    }
}
