//! `spec.ignore`: Flux's drift-ignore rules. On a live object a rule's target selects, each JSON
//! pointer path is left to the in-cluster value: stripped from the applied object when another
//! field manager owns the field (so that manager keeps it) or the cluster has none, otherwise
//! set to the in-cluster value (this controller keeps owning it). Either way the apply neither
//! changes the field nor reports it as drift.

use serde_json::Value;
use sluice_api::kustomize::DriftIgnoreRule;
use sluice_kustomize::{ObjectSelector, SelectorFields};

/// A rule that cannot be used, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIgnoreRule {
    #[error(
        "spec.ignore[{index}].paths[{path}] '{value}' is not a JSON pointer; write it like /spec/replicas"
    )]
    Path {
        index: usize,
        path: usize,
        value: String,
    },
    #[error("spec.ignore[{index}].target is invalid: {reason}; fix the selector")]
    Target { index: usize, reason: String },
}

struct Rule {
    target: Option<ObjectSelector>,
    paths: Vec<String>,
}

/// The compiled `spec.ignore` rules.
#[derive(Default)]
pub struct IgnoreRules(Vec<Rule>);

impl std::fmt::Debug for IgnoreRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&String> = self.0.iter().flat_map(|rule| &rule.paths).collect();
        f.debug_tuple("IgnoreRules").field(&paths).finish()
    }
}

impl IgnoreRules {
    /// Checks every path and parses every target.
    pub fn compile(rules: &[DriftIgnoreRule]) -> Result<Self, InvalidIgnoreRule> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            if let Some((path, value)) = rule
                .paths
                .iter()
                .enumerate()
                .find(|(_, value)| !value.starts_with('/'))
            {
                return Err(InvalidIgnoreRule::Path {
                    index,
                    path,
                    value: value.clone(),
                });
            }
            let target = rule
                .target
                .as_ref()
                .map(|target| {
                    let text = |field: &Option<String>| field.clone().unwrap_or_default();
                    let fields = [
                        text(&target.group),
                        text(&target.version),
                        text(&target.kind),
                        text(&target.name),
                        text(&target.namespace),
                        text(&target.label_selector),
                        text(&target.annotation_selector),
                    ];
                    ObjectSelector::new(SelectorFields {
                        group: &fields[0],
                        version: &fields[1],
                        kind: &fields[2],
                        name: &fields[3],
                        namespace: &fields[4],
                        label_selector: &fields[5],
                        annotation_selector: &fields[6],
                    })
                })
                .transpose()
                .map_err(|error| InvalidIgnoreRule::Target {
                    index,
                    reason: error.to_string(),
                })?;
            compiled.push(Rule {
                target,
                paths: rule.paths.clone(),
            });
        }
        Ok(Self(compiled))
    }

    /// Leaves every ignored path of `desired` to the in-cluster `live` object; `manager` is this
    /// controller's field manager.
    pub fn apply(&self, desired: &mut Value, live: &Value, manager: &str) {
        let selected = self
            .0
            .iter()
            .filter(|rule| rule.target.as_ref().is_none_or(|t| t.matches(live)));
        for path in selected.flat_map(|rule| &rule.paths) {
            match live.pointer(path) {
                Some(in_cluster) if !owned_by_another(live, path, manager) => {
                    set(desired, path, in_cluster.clone());
                }
                // Owned by another manager, or absent in the cluster: left as it is there.
                _ => remove(desired, path),
            }
        }
    }
}

/// The unescaped segments of a JSON pointer.
fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
}

/// Whether a manager other than `manager` lists the field at `path` in its managedFields (a list
/// index counts as the whole list).
fn owned_by_another(live: &Value, path: &str, manager: &str) -> bool {
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    entries
        .iter()
        .filter(|entry| entry["manager"].as_str() != Some(manager))
        .filter_map(|entry| entry.get("fieldsV1"))
        .any(|fields| lists(fields, path))
}

/// Whether a `fieldsV1` set lists `path`: a leaf (`{}`, an atomic field) owns all below it.
fn lists(fields: &Value, path: &str) -> bool {
    let mut at = fields;
    for (depth, segment) in segments(path).enumerate() {
        let leaf = at.as_object().is_some_and(serde_json::Map::is_empty);
        if depth > 0 && (leaf || segment.parse::<usize>().is_ok()) {
            return true;
        }
        match at.get(format!("f:{segment}")) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

fn parent_and_key(path: &str) -> Option<(String, String)> {
    let (parent, _) = path.rsplit_once('/')?;
    let key = segments(path).last()?;
    Some((parent.to_owned(), key))
}

fn remove(desired: &mut Value, path: &str) {
    let Some((parent, key)) = parent_and_key(path) else {
        return;
    };
    match desired.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = key.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

fn set(desired: &mut Value, path: &str, value: Value) {
    let Some((parent, key)) = parent_and_key(path) else {
        return;
    };
    match desired.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = key.parse::<usize>()
                && let Some(item) = items.get_mut(index)
            {
                *item = value;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(value: Value) -> IgnoreRules {
        let rules: Vec<DriftIgnoreRule> = serde_json::from_value(value).unwrap();
        IgnoreRules::compile(&rules).unwrap()
    }

    fn live(managers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "apps", "managedFields": managers},
               "spec": {"replicas": 5, "paused": false}})
    }

    #[test]
    fn a_field_another_manager_owns_is_stripped() {
        let rules = rules(json!([{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]));
        let live = live(json!([
            {"manager": "kustomize-controller", "fieldsV1": {"f:spec": {"f:paused": {}}}},
            {"manager": "kube-controller-manager", "subresource": "scale",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        ]));
        let mut desired = json!({"spec": {"replicas": 2, "paused": true}});
        rules.apply(&mut desired, &live, "kustomize-controller");
        assert_eq!(desired, json!({"spec": {"paused": true}}));
    }

    #[test]
    fn a_field_only_this_controller_owns_takes_the_cluster_value() {
        let rules = rules(json!([{"paths": ["/spec/replicas"]}]));
        let live = live(json!([
            {"manager": "kustomize-controller", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        ]));
        let mut desired = json!({"spec": {"replicas": 2}});
        rules.apply(&mut desired, &live, "kustomize-controller");
        assert_eq!(desired, json!({"spec": {"replicas": 5}}));
    }

    #[test]
    fn a_field_absent_in_the_cluster_stays_absent() {
        let rules = rules(json!([{"paths": ["/metadata/annotations/note"]}]));
        let mut desired = json!({"metadata": {"annotations": {"note": "x", "keep": "y"}}});
        rules.apply(&mut desired, &live(json!([])), "kustomize-controller");
        assert_eq!(desired, json!({"metadata": {"annotations": {"keep": "y"}}}));
    }

    #[test]
    fn targets_select_objects_and_bad_rules_are_named() {
        let rules =
            rules(json!([{"paths": ["/spec/replicas"], "target": {"kind": "StatefulSet"}}]));
        let mut desired = json!({"spec": {"replicas": 2}});
        rules.apply(&mut desired, &live(json!([])), "kustomize-controller");
        assert_eq!(desired, json!({"spec": {"replicas": 2}}));
        let bad: Vec<DriftIgnoreRule> =
            serde_json::from_value(json!([{"paths": ["spec.replicas"]}])).unwrap();
        assert_eq!(
            IgnoreRules::compile(&bad).err().unwrap().to_string(),
            "spec.ignore[0].paths[0] 'spec.replicas' is not a JSON pointer; write it like /spec/replicas"
        );
    }
}
