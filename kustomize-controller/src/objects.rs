//! Naming and labelling Kubernetes objects held as JSON: ids, `Kind/ns/name` subjects, apply
//! order, per-object opt-out flags and the ownership labels of a Kustomization.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_api::kustomize::{ObjectId, labels};

/// The group and version of an `apiVersion`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The inventory id of an object.
pub fn object_id(object: &Value) -> ObjectId {
    let (group, _) = split_api_version(object["apiVersion"].as_str().unwrap_or_default());
    ObjectId {
        namespace: object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        name: object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        group: group.to_owned(),
        kind: object["kind"].as_str().unwrap_or_default().to_owned(),
    }
}

/// `Kind/namespace/name` (or `Kind/name`), as Flux names objects in messages.
pub fn subject(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(namespace) if !namespace.is_empty() => format!("{kind}/{namespace}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

/// Apply order by kind (Helm's install order, as Flux sorts); unknown kinds go last.
pub fn kind_rank(kind: &str) -> usize {
    const ORDER: &[&str] = &[
        "CustomResourceDefinition",
        "Namespace",
        "ResourceQuota",
        "StorageClass",
        "LimitRange",
        "PodSecurityPolicy",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Secret",
        "SecretList",
        "ConfigMap",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "ClusterRole",
        "ClusterRoleList",
        "ClusterRoleBinding",
        "ClusterRoleBindingList",
        "Role",
        "RoleList",
        "RoleBinding",
        "RoleBindingList",
        "Service",
        "DaemonSet",
        "Pod",
        "ReplicationController",
        "ReplicaSet",
        "Deployment",
        "HorizontalPodAutoscaler",
        "StatefulSet",
        "Job",
        "CronJob",
        "IngressClass",
        "Ingress",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    ORDER
        .iter()
        .position(|candidate| *candidate == kind)
        .unwrap_or(ORDER.len())
}

/// Labels and annotations of an object, merged, for per-object opt-out checks.
pub fn metadata_flags(object: &Value) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    for field in ["/metadata/labels", "/metadata/annotations"] {
        if let Some(map) = object.pointer(field).and_then(Value::as_object) {
            for (key, value) in map {
                if let Some(value) = value.as_str() {
                    flags.insert(key.clone(), value.to_owned());
                }
            }
        }
    }
    flags
}

/// Whether the label or annotation `key` equals `value`, ignoring case.
pub fn has_flag(object: &Value, key: &str, value: &str) -> bool {
    metadata_flags(object)
        .get(key)
        .is_some_and(|actual| actual.eq_ignore_ascii_case(value))
}

/// The Kustomization that owns applied objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
}

impl Owner {
    /// Whether `object` carries both of this owner's labels.
    pub fn owns(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        label(labels::NAME).as_deref() == Some(self.name.as_str())
            && label(labels::NAMESPACE).as_deref() == Some(self.namespace.as_str())
    }

    /// Sets the ownership labels Flux puts on every applied object.
    pub fn label(&self, object: &mut Value) {
        if let Some(labels) = metadata_map_mut(object, "labels") {
            labels.insert(labels::NAME.to_owned(), Value::String(self.name.clone()));
            labels.insert(
                labels::NAMESPACE.to_owned(),
                Value::String(self.namespace.clone()),
            );
        }
    }
}

/// The mapping `metadata.<field>` (e.g. `labels`), created or replaced when it is not a mapping;
/// `None` when `object` itself is not one.
pub fn metadata_map_mut<'a>(
    object: &'a mut Value,
    field: &str,
) -> Option<&'a mut Map<String, Value>> {
    let metadata = mapping_entry(object.as_object_mut()?, "metadata")?;
    mapping_entry(metadata, field)
}

fn mapping_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let entry = map.entry(key).or_insert(Value::Null);
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_owner_labels() {
        let mut object = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                "metadata": {"name": "system:x"}});
        assert_eq!(
            object_id(&object).to_string(),
            "_system__x_rbac.authorization.k8s.io_ClusterRole"
        );
        let owner = Owner {
            name: "apps".into(),
            namespace: "flux-system".into(),
        };
        assert!(!owner.owns(&object));
        owner.label(&mut object);
        assert!(owner.owns(&object));
    }

    #[test]
    fn subjects_and_flags() {
        let object = json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n",
                            "annotations": {"kustomize.toolkit.fluxcd.io/prune": "Disabled"}}});
        assert_eq!(subject(&object), "ConfigMap/n/a");
        assert!(has_flag(
            &object,
            "kustomize.toolkit.fluxcd.io/prune",
            "disabled"
        ));
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert!(kind_rank("Namespace") < kind_rank("Widget"));
    }
}
