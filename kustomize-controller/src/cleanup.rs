//! The clean-up Flux makes on a live object before applying it: the fields of `kubectl` (client
//! and server-side apply), `before-first-apply`, this controller's own pre-SSA updates and every
//! `--override-manager` become this controller's, so a field later removed from the source is
//! removed from the cluster; kubectl's last-applied annotation and Flux v1 metadata are dropped.

use serde_json::{Map, Value, json};

/// Annotations removed from live objects: kubectl's last-applied copy and Flux v1 checksums.
const STALE_ANNOTATIONS: [&str; 3] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kustomize.toolkit.fluxcd.io/checksum",
    "fluxcd.io/sync-checksum",
];
/// Labels removed from live objects: Flux v1's garbage-collection mark.
const STALE_LABELS: [&str; 1] = ["fluxcd.io/sync-gc-mark"];

/// The field managers whose fields this controller takes over, each with its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    managers: Vec<(String, &'static str)>,
}

impl Cleanup {
    /// Flux's list for `own` (this controller's field manager) plus `overrides`, taken over
    /// for both Apply and Update operations.
    pub fn new(own: &str, overrides: &[String]) -> Self {
        let mut managers = vec![
            ("kubectl".to_owned(), "Apply"),
            ("kubectl".to_owned(), "Update"),
            ("before-first-apply".to_owned(), "Update"),
            (own.to_owned(), "Update"),
        ];
        for name in overrides.iter().filter(|name| !name.is_empty()) {
            managers.push((name.clone(), "Apply"));
            managers.push((name.clone(), "Update"));
        }
        Self { managers }
    }

    fn listed(&self, entry: &Value) -> bool {
        let text = |key: &str| entry[key].as_str().unwrap_or_default();
        text("subresource").is_empty()
            && self
                .managers
                .iter()
                .any(|(name, operation)| text("manager") == name && text("operation") == *operation)
    }

    /// The JSON patch that cleans `live` up for field manager `own`, if it needs one.
    pub fn patch(&self, live: &Value, own: &str) -> Option<Value> {
        let mut operations = Vec::new();
        if let Some(entries) = self.managed_fields(live, own) {
            operations.push(
                json!({"op": "replace", "path": "/metadata/managedFields", "value": entries}),
            );
        }
        for (field, keys) in [
            ("annotations", &STALE_ANNOTATIONS[..]),
            ("labels", &STALE_LABELS[..]),
        ] {
            for key in keys {
                if live["metadata"][field].get(*key).is_some() {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    operations.push(
                        json!({"op": "remove", "path": format!("/metadata/{field}/{escaped}")}),
                    );
                }
            }
        }
        if operations.is_empty() {
            return None;
        }
        // Refused if the object changed since it was read, rather than losing a new entry.
        let version = live.pointer("/metadata/resourceVersion").cloned()?;
        operations.insert(
            0,
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": version}),
        );
        Some(Value::Array(operations))
    }

    /// The managedFields with the listed managers' fields merged into `own`'s Apply entry.
    fn managed_fields(&self, live: &Value, own: &str) -> Option<Vec<Value>> {
        let entries = live.pointer("/metadata/managedFields")?.as_array()?;
        let (taken, mut kept): (Vec<&Value>, Vec<Value>) =
            entries
                .iter()
                .fold((Vec::new(), Vec::new()), |(mut taken, mut kept), entry| {
                    if self.listed(entry) {
                        taken.push(entry);
                    } else {
                        kept.push(entry.clone());
                    }
                    (taken, kept)
                });
        if taken.is_empty() {
            return None;
        }
        let mut fields = Value::Object(Map::new());
        for entry in &taken {
            merge(&mut fields, &entry["fieldsV1"]);
        }
        let own_apply = kept.iter_mut().find(|entry| {
            entry["manager"] == own
                && entry["operation"] == "Apply"
                && entry.get("subresource").is_none()
        });
        match own_apply {
            Some(entry) => merge(&mut entry["fieldsV1"], &fields),
            None => kept.push(json!({
                "manager": own,
                "operation": "Apply",
                "apiVersion": live["apiVersion"],
                "time": taken[0]["time"],
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            })),
        }
        Some(kept)
    }
}

/// Unites `from` into `into`, both `fieldsV1` sets (nested maps).
fn merge(into: &mut Value, from: &Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else {
        return;
    };
    for (key, value) in from {
        match into.get_mut(key) {
            Some(existing) => merge(existing, value),
            None => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_fields_become_this_controllers() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "resourceVersion": "7",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "1"},
        "managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply",
             "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl", "operation": "Update", "time": "t",
             "fieldsV1": {"f:data": {"f:b": {}}}},
            {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:data": {"f:c": {}}}}
        ]}});
        let patch = Cleanup::new("kustomize-controller", &[]).patch(&live, "kustomize-controller");
        assert_eq!(
            patch,
            Some(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "replace", "path": "/metadata/managedFields", "value": [
                    {"manager": "kustomize-controller", "operation": "Apply",
                     "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}},
                    {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:data": {"f:c": {}}}}
                ]},
                {"op": "remove", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"}
            ]))
        );
    }

    #[test]
    fn override_managers_are_taken_over_and_clean_objects_need_nothing() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "hpa", "operation": "Update", "time": "t", "fieldsV1": {"f:data": {"f:c": {}}}}
        ]}});
        let plain = Cleanup::new("kustomize-controller", &[]);
        assert_eq!(plain.patch(&live, "kustomize-controller"), None);
        let overriding = Cleanup::new("kustomize-controller", &["hpa".to_owned()]);
        let patch = overriding.patch(&live, "kustomize-controller").unwrap();
        assert_eq!(patch[1]["value"][0]["manager"], "kustomize-controller");
        assert_eq!(
            patch[1]["value"][0]["fieldsV1"],
            json!({"f:data": {"f:c": {}}})
        );
    }
}
