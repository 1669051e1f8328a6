//! The part of a live object our field manager owns, read through its `managedFields` entry, so
//! that writes by other controllers to other fields (a Deployment's revision annotation, status)
//! are not mistaken for drift.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

/// Hash of the values of every field `manager` owns by server-side apply (its fieldsV1 sets).
pub fn owned_fingerprint(object: &Value, manager: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    let entries = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| entry["manager"].as_str() == Some(manager))
        .filter(|entry| entry["subresource"].as_str().is_none_or(str::is_empty));
    for entry in entries {
        entry["operation"].as_str().hash(&mut hasher);
        project(object, &entry["fieldsV1"])
            .to_string()
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// The values of `value` selected by a fieldsV1 set, keyed like the set.
pub fn project(value: &Value, fields: &Value) -> Value {
    let Some(fields) = fields.as_object() else {
        return Value::Null;
    };
    let mut projected = Map::new();
    for (key, children) in fields {
        let selected = if let Some(name) = key.strip_prefix("f:") {
            value.get(name).map(|child| project_child(child, children))
        } else if let Some(keys) = key.strip_prefix("k:") {
            let keys: Value = serde_json::from_str(keys).unwrap_or(Value::Null);
            items(value)
                .find(|item| matches_keys(item, &keys))
                .map(|item| project_child(item, children))
        } else if let Some(wanted) = key.strip_prefix("v:") {
            let wanted: Value = serde_json::from_str(wanted).unwrap_or(Value::Null);
            Some(Value::Bool(items(value).any(|item| *item == wanted)))
        } else if let Some(index) = key.strip_prefix("i:") {
            index
                .parse::<usize>()
                .ok()
                .and_then(|index| value.get(index))
                .map(|item| project_child(item, children))
        } else {
            continue;
        };
        projected.insert(key.clone(), selected.unwrap_or(Value::Null));
    }
    Value::Object(projected)
}

/// A leaf of the set (`{}` or only `.`) owns the whole value; otherwise project further.
fn project_child(child: &Value, children: &Value) -> Value {
    let is_leaf = children
        .as_object()
        .is_none_or(|set| set.keys().all(|key| key == "."));
    if is_leaf {
        child.clone()
    } else {
        project(child, children)
    }
}

fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn matches_keys(item: &Value, keys: &Value) -> bool {
    keys.as_object().is_some_and(|keys| {
        keys.iter()
            .all(|(name, wanted)| item.get(name) == Some(wanted))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANAGER: &str = "kustomize-controller";

    fn deployment(replicas: i64, image: &str, annotations: Value, owner: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "annotations": annotations, "labels": {"app": "web"},
                "managedFields": [
                    {"manager": owner, "operation": "Apply", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                     "fieldsV1": {"f:status": {"f:replicas": {}}}},
                ],
            },
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "sidecar", "image": "other:1"},
                {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": replicas},
        })
    }

    #[test]
    fn writes_to_fields_others_own_are_not_drift() {
        let applied = deployment(1, "app:1", json!({}), MANAGER);
        let annotated = deployment(
            1,
            "app:1",
            json!({"deployment.kubernetes.io/revision": "1"}),
            MANAGER,
        );
        let mut with_status = annotated.clone();
        with_status["status"] = json!({"replicas": 1, "availableReplicas": 1});
        with_status["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other:2");
        let print = owned_fingerprint(&applied, MANAGER);
        assert_eq!(owned_fingerprint(&annotated, MANAGER), print);
        assert_eq!(owned_fingerprint(&with_status, MANAGER), print);
    }

    #[test]
    fn a_change_to_an_owned_value_or_its_ownership_is_drift() {
        let applied = deployment(1, "app:1", json!({}), MANAGER);
        let print = owned_fingerprint(&applied, MANAGER);
        assert_ne!(
            owned_fingerprint(&deployment(3, "app:1", json!({}), MANAGER), MANAGER),
            print
        );
        assert_ne!(
            owned_fingerprint(&deployment(1, "app:2", json!({}), MANAGER), MANAGER),
            print,
            "list item selected by its key"
        );
        assert_ne!(
            owned_fingerprint(&deployment(1, "app:1", json!({}), "kubectl"), MANAGER),
            print,
            "fields taken over by another manager"
        );
    }

    #[test]
    fn set_members_and_indexes_are_projected() {
        let object = json!({"spec": {"finalizers": ["a", "b"], "args": ["x", "y"]}});
        let fields = json!({"f:spec": {"f:finalizers": {"v:\"b\"": {}, "v:\"c\"": {}},
                                      "f:args": {"i:1": {}}}});
        assert_eq!(
            project(&object, &fields),
            json!({"f:spec": {"f:finalizers": {"v:\"b\"": true, "v:\"c\"": false},
                              "f:args": {"i:1": "y"}}})
        );
    }
}
