//! Strategic merge, following kustomize's kyaml `merge2` walk step by step: maps merge field by
//! field (`null` deletes), lists with a `merge` strategy in the built-in schema merge element by
//! element on their keys (patch elements first), every other list is replaced, and `$patch:
//! delete|replace|merge` directives apply to maps and merge lists.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::resource::scalar_text;
use crate::schema::Schema;

const DIRECTIVE: &str = "$patch";

/// Merges `patch` into `target`; `None` means the patch deleted the object.
pub(crate) fn merge(target: &Value, patch: &Value) -> Result<Option<Value>, String> {
    Ok(walk(Some(target), Some(patch), None)?.map(|m| m.value))
}

/// A walk result; `from_dest` is true when the value is the destination node updated in place.
struct Merged {
    value: Value,
    from_dest: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    List,
    Scalar,
}

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::Object(_) => Kind::Map,
        Value::Array(_) => Kind::List,
        _ => Kind::Scalar,
    }
}

fn is_missing_or_null(value: Option<&Value>) -> bool {
    value.is_none_or(Value::is_null)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Map => "a mapping",
        Kind::List => "a list",
        Kind::Scalar => "a scalar",
    }
}

fn walk(
    dest: Option<&Value>,
    origin: Option<&Value>,
    schema: Option<Schema>,
) -> Result<Option<Merged>, String> {
    let schema = schema.or_else(|| {
        [dest, origin]
            .into_iter()
            .flatten()
            .find_map(schema_of_object)
    });
    let kind = [dest, origin]
        .into_iter()
        .flatten()
        .find(|v| !v.is_null())
        .map(kind_of);
    if let Some(kind) = kind {
        for source in [dest, origin]
            .into_iter()
            .flatten()
            .filter(|v| !v.is_null())
        {
            if kind_of(source) != kind {
                return Err(format!(
                    "cannot merge {} with {}",
                    kind_name(kind_of(source)),
                    kind_name(kind)
                ));
            }
        }
    }
    match kind {
        None | Some(Kind::Map) => walk_map(dest, origin, schema),
        Some(Kind::List) => match schema.and_then(Schema::merge_keys) {
            Some(keys) => walk_merge_list(dest, origin, keys, schema.and_then(Schema::elements)),
            None => Ok(match origin {
                Some(Value::Null) => None,
                Some(value) => Some(Merged {
                    value: value.clone(),
                    from_dest: false,
                }),
                None => dest.map(|value| Merged {
                    value: value.clone(),
                    from_dest: true,
                }),
            }),
        },
        Some(Kind::Scalar) => Ok(match origin {
            Some(Value::Null) => None,
            Some(value) => Some(Merged {
                value: value.clone(),
                from_dest: false,
            }),
            None => dest.map(|value| Merged {
                value: value.clone(),
                from_dest: true,
            }),
        }),
    }
}

/// The built-in schema for a nested object that names its own `apiVersion` and `kind`.
fn schema_of_object(value: &Value) -> Option<Schema> {
    let api_version = value
        .get("apiVersion")
        .map(scalar_text)
        .filter(|s| !s.is_empty())?;
    let kind = value
        .get("kind")
        .map(scalar_text)
        .filter(|s| !s.is_empty())?;
    Schema::for_kind(&api_version, &kind)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

fn parse_directive(value: &str) -> Result<Directive, String> {
    match value {
        "merge" => Ok(Directive::Merge),
        "replace" => Ok(Directive::Replace),
        "delete" => Ok(Directive::Delete),
        other => Err(format!("unknown patch strategy '{other}'")),
    }
}

/// A map patch's `$patch` directive, and the patch without it.
fn map_directive(origin: Option<&Value>) -> Result<(Directive, Option<Value>), String> {
    let Some(origin) = origin else {
        return Ok((Directive::Merge, None));
    };
    let Value::Object(map) = origin else {
        return Err("no strategic merge patch strategy for a scalar".to_string());
    };
    let Some(value) = map.get(DIRECTIVE) else {
        return Ok((Directive::Merge, Some(origin.clone())));
    };
    let directive = parse_directive(&scalar_text(value))?;
    let mut elided = map.clone();
    elided.remove(DIRECTIVE);
    Ok((directive, Some(Value::Object(elided))))
}

/// A list patch's directive element (`- $patch: replace`), and the patch without it.
fn list_directive(origin: Option<&Value>) -> Result<(Directive, Option<Value>), String> {
    let Some(Value::Array(items)) = origin else {
        return Ok((Directive::Merge, origin.cloned()));
    };
    let found = items
        .iter()
        .find_map(|item| item.as_object().filter(|m| m.contains_key(DIRECTIVE)));
    let Some(element) = found.filter(|m| m.len() <= 1) else {
        return Ok((Directive::Merge, origin.cloned()));
    };
    let value = element.get(DIRECTIVE).map(scalar_text).unwrap_or_default();
    let directive = parse_directive(&value)?;
    let mut elided = items.clone();
    element_set(&mut elided, None, &[DIRECTIVE.to_string()], &[value])?;
    Ok((directive, Some(Value::Array(elided))))
}

fn walk_map(
    dest: Option<&Value>,
    origin: Option<&Value>,
    schema: Option<Schema>,
) -> Result<Option<Merged>, String> {
    let (base, from_dest, origin) = if is_missing_or_null(dest) {
        let (directive, elided) =
            map_directive(origin).unwrap_or((Directive::Merge, origin.cloned()));
        if directive == Directive::Delete {
            return Ok(None);
        }
        // kyaml's field setter clears a field set to null, so an empty field of the target goes.
        if origin.is_none_or(Value::is_null) {
            return Ok(None);
        }
        (elided.clone().unwrap_or(Value::Null), false, elided)
    } else {
        if origin.is_some_and(Value::is_null) {
            return Ok(None);
        }
        let (directive, elided) = map_directive(origin)?;
        match directive {
            Directive::Delete => return Ok(None),
            Directive::Replace => (elided.clone().unwrap_or(Value::Null), false, elided),
            Directive::Merge => (dest.cloned().unwrap_or(Value::Null), true, elided),
        }
    };
    let Value::Object(mut base) = base else {
        return Ok(Some(Merged {
            value: base,
            from_dest,
        }));
    };
    let origin_map = origin.as_ref().and_then(Value::as_object);
    let names: BTreeSet<String> = base
        .keys()
        .chain(origin_map.into_iter().flat_map(Map::keys))
        .cloned()
        .collect();
    for name in names {
        let field_schema = schema.and_then(|s| s.field(&name));
        let merged = walk(
            base.get(&name),
            origin_map.and_then(|m| m.get(&name)),
            field_schema,
        )?;
        match merged {
            Some(m) => {
                base.insert(name, m.value);
            }
            None => {
                base.remove(&name);
            }
        }
    }
    Ok(Some(Merged {
        value: Value::Object(base),
        from_dest,
    }))
}

fn walk_merge_list(
    dest: Option<&Value>,
    origin: Option<&Value>,
    keys: &[String],
    element_schema: Option<Schema>,
) -> Result<Option<Merged>, String> {
    let (base, origin) = if is_missing_or_null(dest) {
        (origin.cloned(), origin.cloned())
    } else {
        if origin.is_some_and(Value::is_null) {
            return Ok(None);
        }
        let (directive, elided) = list_directive(origin)?;
        match directive {
            Directive::Delete => return Ok(None),
            Directive::Replace => (elided.clone(), elided),
            Directive::Merge => (dest.cloned(), elided),
        }
    };
    let mut base = match base {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Ok(Some(Merged {
                value: other,
                from_dest: false,
            }));
        }
        None => return Ok(None),
    };
    let origin = match origin {
        Some(Value::Array(items)) => Some(items),
        _ => None,
    };
    let values = element_values(origin.as_deref(), &base, keys);
    let merged = if !values.is_empty() || !keys.is_empty() {
        set_elements(values, keys, &mut base, origin.as_deref(), element_schema)?
    } else {
        let primitive = primitive_values(origin.as_deref(), &base);
        set_elements(
            primitive,
            &[String::new()],
            &mut base,
            origin.as_deref(),
            element_schema,
        )?
    };
    Ok(Some(match merged {
        Some(items) => Merged {
            value: Value::Array(items),
            from_dest: false,
        },
        None => Merged {
            value: Value::Array(base),
            from_dest: true,
        },
    }))
}

/// Each element's key values (`""` for a missing key), patch elements first, without repeats.
fn element_values(origin: Option<&[Value]>, base: &[Value], keys: &[String]) -> Vec<Vec<String>> {
    let mut result: Vec<Vec<String>> = Vec::new();
    for source in [origin, Some(base)].into_iter().flatten() {
        for element in source {
            let tuple: Vec<String> = keys
                .iter()
                .map(|k| element.get(k).map(scalar_text).unwrap_or_default())
                .collect();
            if !tuple.is_empty() && !result.contains(&tuple) {
                result.push(tuple);
            }
        }
    }
    result
}

fn primitive_values(origin: Option<&[Value]>, base: &[Value]) -> Vec<Vec<String>> {
    let mut result: Vec<Vec<String>> = Vec::new();
    for source in [origin, Some(base)].into_iter().flatten() {
        for element in source {
            let tuple = vec![scalar_text(element)];
            if !result.contains(&tuple) {
                result.push(tuple);
            }
        }
    }
    result
}

/// Merges matching elements; returns the new list, or `None` when there was nothing to merge.
fn set_elements(
    mut values_list: Vec<Vec<String>>,
    keys: &[String],
    base: &mut Vec<Value>,
    origin: Option<&[Value]>,
    element_schema: Option<Schema>,
) -> Result<Option<Vec<Value>>, String> {
    let mut added: Vec<Value> = Vec::new();
    if keys.len() > 1 {
        merge_values(&mut values_list);
    }
    let mut valid_keys: Vec<String> = Vec::new();
    for values in &values_list {
        if values.is_empty() {
            continue;
        }
        let valid_values;
        (valid_keys, valid_values) = validate_keys(&values_list, values, keys);
        let (element_keys, element_values) = validate_keys(
            std::slice::from_ref(&valid_values),
            &valid_values,
            &valid_keys,
        );
        let dest_index = element_index(base, &element_keys, &element_values);
        let origin_element =
            origin.and_then(|o| element_index(o, &element_keys, &element_values).map(|i| &o[i]));
        let merged = walk(dest_index.map(|i| &base[i]), origin_element, element_schema)?;
        if let (Some(m), Some(i)) = (&merged, dest_index)
            && m.from_dest
        {
            base[i] = m.value.clone();
        }
        let mut value = merged.map(|m| m.value);
        let mut removed = false;
        for (i, key) in valid_keys.iter().enumerate() {
            match &mut value {
                None | Some(Value::Null) => {
                    element_set(base, None, &valid_keys, &valid_values)?;
                    removed = true;
                }
                Some(Value::Object(map)) if map.is_empty() => {
                    element_set(base, None, &valid_keys, &valid_values)?;
                    removed = true;
                }
                Some(Value::Object(map)) if !map.contains_key(key) => {
                    if let Some(text) = valid_values.get(i).filter(|v| !v.is_empty()) {
                        map.insert(key.clone(), plain_scalar(text));
                    }
                }
                _ => {}
            }
        }
        if removed {
            continue;
        }
        element_set(&mut added, value, &valid_keys, &valid_values)?;
    }
    if values_list.is_empty() {
        return Ok(None);
    }
    if valid_keys.is_empty() {
        valid_keys.push(String::new());
    }
    append_list(&mut added, base, &valid_keys)?;
    Ok(Some(added))
}

/// A key value kyaml writes back into an element: an untagged scalar, so it reads like plain YAML.
fn plain_scalar(text: &str) -> Value {
    match crate::yaml::parse_single(text) {
        Ok(value @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => value,
        _ => Value::String(text.to_string()),
    }
}

/// Sets each element of `source` into `destination`, replacing elements with the same keys.
fn append_list(
    destination: &mut Vec<Value>,
    source: &[Value],
    keys: &[String],
) -> Result<(), String> {
    for element in source {
        if keys.first().is_none_or(String::is_empty) {
            element_set(
                destination,
                Some(element.clone()),
                &[String::new()],
                &[scalar_text(element)],
            )?;
            continue;
        }
        let mut values = Vec::new();
        for key in keys {
            match field(element, key)? {
                Some(value) => values.push(scalar_text(value)),
                None => destination.push(element.clone()),
            }
        }
        if keys.len() > 1 {
            element_set(destination, None, keys, &values)?;
        }
        element_set(destination, Some(element.clone()), keys, &values)?;
    }
    Ok(())
}

/// A mapping's field; null elements have none, other non-mappings are an error.
fn field<'v>(element: &'v Value, key: &str) -> Result<Option<&'v Value>, String> {
    match element {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(map.get(key)),
        _ => Err(format!(
            "expected a mapping with field `{key}` in a merge list"
        )),
    }
}

/// Keeps only the keys some element has a value for (all keys if none has any).
fn validate_keys(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let has_value: BTreeSet<&String> = values_list
        .iter()
        .flat_map(|vs| {
            vs.iter()
                .enumerate()
                .filter(|(_, v)| !v.is_empty())
                .filter_map(|(i, _)| keys.get(i))
        })
        .collect();
    if has_value.is_empty() {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys = keys
        .iter()
        .filter(|k| has_value.contains(k))
        .cloned()
        .collect();
    let valid_values = values
        .iter()
        .enumerate()
        .filter(|(i, v)| !v.is_empty() || keys.get(*i).is_some_and(|k| has_value.contains(k)))
        .map(|(_, v)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

/// Unifies key tuples that agree where both have values.
fn merge_values(values_list: &mut [Vec<String>]) {
    for i in 0..values_list.len() {
        for j in 0..values_list.len() {
            if let Some(merged) = unify(&values_list[i], &values_list[j]) {
                values_list[i] = merged.clone();
                values_list[j] = merged;
            }
        }
    }
}

fn unify(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut result = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            result.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else {
            result.push(if x.is_empty() { y.clone() } else { x.clone() });
        }
    }
    common.then_some(result)
}

/// The first element whose key fields hold exactly `values` (scalars by text when the key is
/// empty).
fn element_index(list: &[Value], keys: &[String], values: &[String]) -> Option<usize> {
    let first_value = values.first().map(String::as_str).unwrap_or("");
    if keys.first().is_none_or(String::is_empty) {
        return list.iter().position(|e| scalar_text(e) == first_value);
    }
    if keys.len() != values.len() {
        return None;
    }
    list.iter().position(|element| {
        element.as_object().is_some_and(|map| {
            keys.iter()
                .zip(values)
                .all(|(k, v)| map.get(k).is_some_and(|f| &scalar_text(f) == v))
        })
    })
}

/// kyaml's element setter: drops null and empty-map elements, replaces every element matching
/// the keys with `element` (or removes them when `element` is `None`), and appends `element`
/// when nothing matched.
fn element_set(
    list: &mut Vec<Value>,
    element: Option<Value>,
    keys: &[String],
    values: &[String],
) -> Result<(), String> {
    let empty_key = [String::new()];
    let keys = if keys.is_empty() {
        &empty_key[..]
    } else {
        keys
    };
    let mapping_setter = keys.first().is_some_and(|k| !k.is_empty())
        && values.first().is_some_and(|v| !v.is_empty());
    let mut kept = Vec::with_capacity(list.len());
    let mut found_any = false;
    for item in list.drain(..) {
        if item.is_null() || item.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        if !item.is_object() && mapping_setter {
            kept.push(item);
            continue;
        }
        let mut found = false;
        for (j, key) in keys.iter().enumerate() {
            if let Some(value) = values.get(j) {
                found = setter_field_matches(&item, key, value)?;
            }
            if !found {
                break;
            }
        }
        if !found {
            if !values.is_empty() {
                kept.push(item);
            }
            continue;
        }
        found_any = true;
        if let Some(element) = &element {
            kept.push(element.clone());
        }
    }
    *list = kept;
    match element {
        Some(element) if !element.is_null() && !found_any => list.push(element),
        _ => {}
    }
    Ok(())
}

/// kyaml's field matcher as the element setter uses it: an empty value only asks that the field
/// exists; an empty key compares a scalar element's text.
fn setter_field_matches(item: &Value, key: &str, value: &str) -> Result<bool, String> {
    if key.is_empty() {
        return match item {
            Value::Object(_) | Value::Array(_) => {
                Err("expected a scalar element in a list of scalars".to_string())
            }
            scalar => Ok(scalar_text(scalar) == value),
        };
    }
    let Value::Object(map) = item else {
        return Err(format!(
            "expected a mapping with field `{key}` in a merge list"
        ));
    };
    Ok(map
        .get(key)
        .is_some_and(|field| value.is_empty() || scalar_text(field) == value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn merge_lists_put_patch_elements_first() {
        let target =
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let patch =
            deployment(json!([{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]));
        let merged = merge(&target, &patch).unwrap().unwrap();
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}, {"name": "a", "image": "a:1"}])
        );
    }

    #[test]
    fn directives_delete_and_replace() {
        let target =
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let patch = deployment(json!([{"name": "a", "$patch": "delete"}]));
        let merged = merge(&target, &patch).unwrap().unwrap();
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b:1"}])
        );
        let patch = deployment(json!([{"$patch": "replace"}, {"name": "z", "image": "z:1"}]));
        let merged = merge(&target, &patch).unwrap().unwrap();
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "z", "image": "z:1"}])
        );
        assert!(
            merge(&target, &json!({"$patch": "delete"}))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn custom_resources_replace_lists_and_null_deletes() {
        let target = json!({"apiVersion": "x/v1", "kind": "W", "spec": {"l": [1, 2], "m": {"a": 1, "b": 2}}});
        let patch = json!({"spec": {"l": [3], "m": {"a": null, "c": 3}}});
        assert_eq!(
            merge(&target, &patch).unwrap().unwrap()["spec"],
            json!({"l": [3], "m": {"b": 2, "c": 3}})
        );
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("name".to_string()),
            Just("$patch".to_string()),
            Just("containers".to_string()),
            Just("ports".to_string()),
            Just("containerPort".to_string()),
            Just("protocol".to_string()),
            Just("env".to_string()),
            Just("finalizers".to_string()),
            "[a-z]{1,3}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            Just(json!("delete")),
            Just(json!("replace")),
            Just(json!("merge")),
            Just(json!("a")),
            any::<i8>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(Value::Bool),
        ];
        leaf.prop_recursive(5, 64, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn merging_arbitrary_values_never_panics(target in value(), patch in value()) {
            let target = deployment(json!([target]));
            let patch = deployment(patch);
            let _ = merge(&target, &patch);
        }
    }
}
