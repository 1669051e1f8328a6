//! kustomize's label and annotation transformers put one shared YAML node into every field they
//! create for a key of an object, so a later in-place change of one of those fields (a strategic
//! merge patch, a replacement, another label transformer) shows in all of them; a JSON patch
//! rebuilds the object and ends the sharing. This tracks those groups per resource.

use serde_json::Value;

use crate::resmap::ResMap;
use crate::resource::Resource;

/// Fields of one resource holding one shared value (paths of mapping keys from the root).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Linked {
    value: String,
    paths: Vec<Vec<String>>,
}

impl Linked {
    /// A group of fields a label transformer created with `value`; `None` for fewer than two.
    pub fn new(value: &str, paths: Vec<Vec<String>>) -> Option<Linked> {
        (paths.len() > 1).then(|| Linked {
            value: value.to_string(),
            paths,
        })
    }
}

/// Gives every field of a group the value one of them was changed to in place.
pub(crate) fn propagate(resource: &mut Resource) {
    let mut groups = std::mem::take(&mut resource.linked);
    for group in &mut groups {
        group
            .paths
            .retain(|p| lookup(&resource.object, p).is_some_and(Value::is_string));
        let changed = group
            .paths
            .iter()
            .filter_map(|p| lookup(&resource.object, p).and_then(Value::as_str))
            .find(|v| *v != group.value)
            .map(str::to_string);
        let Some(changed) = changed else {
            continue;
        };
        for path in &group.paths {
            if let Some(value) = lookup_mut(&mut resource.object, path)
                && value.as_str() == Some(group.value.as_str())
            {
                *value = Value::String(changed.clone());
            }
        }
        group.value = changed;
    }
    groups.retain(|g| g.paths.len() > 1);
    resource.linked = groups;
}

/// [`propagate`] for every resource.
pub(crate) fn propagate_all(resources: &mut ResMap) {
    resources.resources.iter_mut().for_each(propagate);
}

fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn lookup_mut<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, key| v.get_mut(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_to_one_linked_field_reaches_the_others() {
        let mut resource = Resource::new(
            json!({"metadata": {"labels": {"v": "1"}}, "spec": {"selector": {"v": "1"}}}),
            "r.yaml".into(),
        );
        let paths = vec![
            vec!["metadata".into(), "labels".into(), "v".into()],
            vec!["spec".into(), "selector".into(), "v".into()],
        ];
        resource.linked.extend(Linked::new("1", paths));
        resource.object["metadata"]["labels"]["v"] = json!("2");
        propagate(&mut resource);
        assert_eq!(resource.object["spec"]["selector"]["v"], "2");
        // A removed field leaves the group, which then has nothing left to share.
        resource.object["spec"]["selector"]
            .as_object_mut()
            .map(|m| m.remove("v"));
        resource.object["metadata"]["labels"]["v"] = json!("3");
        propagate(&mut resource);
        assert!(resource.linked.is_empty());
        assert!(resource.object["spec"]["selector"].get("v").is_none());
    }
}
