//! Walking a field spec's path through an object, the way kustomize's field-spec filter does:
//! lists along the path are entered element by element, missing fields may be created.

use serde_json::{Map, Value};

use crate::fieldspecs::FieldSpec;
use crate::resource::{Gvk, scalar_text};

/// What to create for missing fields on a spec with `create: true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Create {
    /// Never create (name references, images).
    Nothing,
    /// Intermediate mappings and a final scalar (names, namespaces, replicas).
    Scalar,
    /// Intermediate mappings and a final mapping (labels, annotations).
    Mapping,
}

/// Calls `set` on every value at `spec.path` in `object`, if the spec selects its kind.
pub(crate) fn apply(
    object: &mut Value,
    spec: &FieldSpec,
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let kind = object.get("kind").map(scalar_text).unwrap_or_default();
    let api_version = object
        .get("apiVersion")
        .map(scalar_text)
        .unwrap_or_default();
    if !Gvk::new(&api_version, &kind).is_selected_by(&spec.gvk) {
        return Ok(());
    }
    let path = split_path(&spec.path);
    let create = if spec.create { create } else { Create::Nothing };
    walk(object, &path, create, set).map_err(|e| format!("field `{}`: {e}", spec.path))
}

/// Splits on `/`, keeping `\/` as a literal slash and ignoring one leading slash.
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                chars.next();
                if let Some(last) = parts.last_mut() {
                    last.push('/');
                }
            }
            '/' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    parts
}

fn walk(
    node: &mut Value,
    path: &[String],
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return set(node);
    };
    match node {
        Value::Null => Ok(()),
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| walk(item, path, create, set)),
        Value::Object(map) => walk_field(map, first, rest, create, set),
        _ => Err("expected a sequence or mapping node".to_string()),
    }
}

fn walk_field(
    map: &mut Map<String, Value>,
    field: &str,
    rest: &[String],
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let (name, is_list) = match field.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (field, false),
    };
    if name.is_empty() {
        return Err("cannot set or create an empty field name".to_string());
    }
    let empty = if is_list || create == Create::Nothing {
        None
    } else if rest.is_empty() && create == Create::Scalar {
        Some(Value::String(String::new()))
    } else {
        Some(Value::Object(Map::new()))
    };
    let value = match (map.get_mut(name), empty) {
        (Some(value), _) => value,
        (None, Some(empty)) => map.entry(name.to_string()).or_insert(empty),
        (None, None) => return Ok(()),
    };
    if value.is_null() {
        if is_list {
            *value = Value::Array(Vec::new());
        } else if rest.is_empty() && create == Create::Scalar {
            *value = Value::String(String::new());
        } else if create != Create::Nothing {
            *value = Value::Object(Map::new());
        }
    }
    walk(value, rest, create, set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk: Gvk::default(),
            path: path.to_string(),
            create,
        }
    }

    #[test]
    fn creates_missing_mappings_and_walks_lists() {
        let mut obj = json!({"kind": "X", "spec": {"items": [{"a": 1}, {"a": 2}]}});
        apply(
            &mut obj,
            &spec("spec/items/labels", true),
            Create::Mapping,
            &mut |v| {
                v.as_object_mut().unwrap().insert("k".into(), json!("v"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(obj["spec"]["items"][1]["labels"], json!({"k": "v"}));
    }

    #[test]
    fn escaped_slashes_stay_in_one_field() {
        assert_eq!(
            split_path(r"metadata/annotations/a.io\/b"),
            ["metadata", "annotations", "a.io/b"]
        );
    }
}
