//! Legacy `vars`: each kustomization marks the object a var names; after the whole build,
//! `$(NAME)` in kustomize's var-reference fields becomes the value of that object's field.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::kustomization::Var;
use crate::resmap::ResMap;
use crate::resource::ResId;

impl ResMap {
    /// Adds vars, refusing a name already declared.
    pub fn merge_vars(&mut self, vars: impl IntoIterator<Item = Var>, file: &Path) -> Result<()> {
        for var in vars {
            if self.vars.contains_key(&var.name) {
                return Err(Error::invalid(
                    file,
                    "vars",
                    format!("var '{}' already encountered", var.name),
                ));
            }
            self.vars.insert(var.name.clone(), var);
        }
        Ok(())
    }
}

/// Records a kustomization's vars on the objects they name (by any current or earlier id).
pub(crate) fn declare(resources: &mut ResMap, vars: &[Var], file: &Path) -> Result<()> {
    for var in vars {
        let target = ResId {
            gvk: var.gvk.clone(),
            name: var.object_name.clone(),
            namespace: var.namespace.clone(),
        };
        let exact = !target.namespace.is_empty() || target.gvk.is_cluster_scoped();
        let matches = |id: &ResId| {
            if exact {
                id.equals(&target)
            } else {
                id.name == target.name && id.gvk == target.gvk
            }
        };
        let matched: Vec<usize> = (0..resources.resources.len())
            .filter(|&i| resources.resources[i].all_ids().iter().any(matches))
            .collect();
        match matched.as_slice() {
            [] => {}
            [index] => resources.resources[*index].var_names.push(var.name.clone()),
            many => {
                return Err(Error::invalid(
                    file,
                    "vars",
                    format!(
                        "found {} resId matches for var {} (unable to disambiguate)",
                        many.len(),
                        var.name
                    ),
                ));
            }
        }
    }
    resources.merge_vars(vars.iter().cloned(), file)
}

/// Replaces `$(NAME)` references in the var-reference fields of every resource.
pub(crate) fn resolve(resources: &mut ResMap, file: &Path) -> Result<()> {
    let mut values = BTreeMap::new();
    for var in resources.vars.values() {
        let Some(resource) = resources
            .resources
            .iter()
            .find(|r| r.var_names.contains(&var.name))
        else {
            return Err(Error::invalid(
                file,
                "vars",
                format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    var.name
                ),
            ));
        };
        let value = field_value(&resource.object, &var.field_path).ok_or_else(|| {
            Error::invalid(
                file,
                "vars",
                format!(
                    "field specified in var '{}' not found in corresponding resource",
                    var.name
                ),
            )
        })?;
        values.insert(var.name.clone(), value);
    }
    if values.is_empty() {
        return Ok(());
    }
    for resource in &mut resources.resources {
        for spec in &resources.config.var_references {
            fieldpath::apply(&mut resource.object, spec, Create::Nothing, &mut |node| {
                substitute_node(node, &values)
            })
            .map_err(|e| {
                Error::invalid(file, "vars", format!("{}: {e}", resource.source.display()))
            })?;
        }
    }
    Ok(())
}

/// The value at a dotted path (`spec.ports[0].port` and `spec.ports.0.port` both work);
/// `None` when missing or null.
fn field_value(object: &Value, path: &str) -> Option<Value> {
    let mut parts = Vec::new();
    for part in crate::replacements::split_path(path) {
        match part.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
            Some((name, index))
                if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) =>
            {
                if !name.is_empty() {
                    parts.push(name.to_string());
                }
                parts.push(index.to_string());
            }
            _ => parts.push(part),
        }
    }
    crate::replacements::lookup(object, &parts)
        .ok()
        .flatten()
        .cloned()
}

fn substitute_node(node: &mut Value, values: &BTreeMap<String, Value>) -> Result<(), String> {
    match node {
        Value::Null => Ok(()),
        Value::String(text) => {
            *node = substitute(text, values);
            Ok(())
        }
        Value::Object(map) => {
            for value in map.values_mut() {
                if let Value::String(text) = value {
                    *value = substitute(text, values);
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|item| match item {
            Value::String(text) => {
                *item = substitute(text, values);
                Ok(())
            }
            _ => Err("invalid value type: expected a string".to_string()),
        }),
        _ => Ok(()),
    }
}

/// Expands `$(NAME)` (and `$$` to `$`); a reference that is the whole string keeps the
/// value's type. Unknown names and values that are not scalars stay as written.
fn substitute(input: &str, values: &BTreeMap<String, Value>) -> Value {
    let lookup = |name: &str| match values.get(name) {
        Some(value @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => Some(value.clone()),
        _ => None,
    };
    if let Some(name) = input
        .strip_prefix("$(")
        .and_then(|rest| rest.strip_suffix(')'))
        && !name.contains(')')
    {
        return lookup(name).unwrap_or_else(|| Value::String(input.to_string()));
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(position) = rest.find('$') {
        out.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(end) => {
                    let name = &after[1..1 + end];
                    match lookup(name) {
                        Some(Value::String(s)) => out.push_str(&s),
                        Some(other) => out.push_str(&other.to_string()),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &after[2 + end..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitutes_references() {
        let values: BTreeMap<String, Value> =
            [("A".to_string(), json!("x")), ("N".to_string(), json!(3))]
                .into_iter()
                .collect();
        assert_eq!(substitute("$(A)", &values), json!("x"));
        assert_eq!(substitute("$(N)", &values), json!(3));
        assert_eq!(
            substitute("a-$(A)-$(N)-$(B)-$$-$x-$(", &values),
            json!("a-x-3-$(B)-$-$x-$(")
        );
    }

    #[test]
    fn reads_field_paths() {
        let object = json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(field_value(&object, "spec.ports[1].port"), Some(json!(443)));
        assert_eq!(field_value(&object, "spec.missing"), None);
    }
}
