//! `labels`, `commonLabels` and `commonAnnotations`: set string entries in the maps their
//! field specs name (metadata, pod templates, selectors), creating the maps where allowed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
use crate::linked::{self, Linked};
use crate::load::Context;
use crate::resmap::ResMap;

pub(crate) fn apply(
    resources: &mut ResMap,
    entries: &BTreeMap<String, String>,
    specs: &[FieldSpec],
    ctx: &Context,
    field: &str,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    for resource in &mut resources.resources {
        for (key, text) in entries {
            let mut created = Vec::new();
            for spec in specs {
                if set_entry(&mut resource.object, spec, key, text)
                    .map_err(|e| Error::invalid(ctx.file, field, e))?
                {
                    created.push(spec_path(spec, key));
                }
            }
            // Fields inside lists (or with escaped paths) are not tracked.
            let created = created.into_iter().flatten().collect();
            resource.linked.extend(Linked::new(text, created));
        }
        linked::propagate(resource);
    }
    Ok(())
}

/// Sets `key` in the maps `spec` names; true when it created the key in exactly one map.
fn set_entry(object: &mut Value, spec: &FieldSpec, key: &str, text: &str) -> Result<bool, String> {
    let (mut calls, mut created) = (0, 0);
    let mut set = |value: &mut Value| {
        calls += 1;
        if value.is_null() {
            *value = Value::Object(Map::new());
        }
        match value {
            Value::Object(map) => {
                if !map.contains_key(key) {
                    if !crate::yaml::is_plain_string(key) {
                        return Err(format!(
                            "kustomize cannot add the key `{key}`: it would read back as a non-string"
                        ));
                    }
                    created += 1;
                }
                map.insert(key.to_string(), Value::String(text.to_string()));
                Ok(())
            }
            _ => Err(format!(
                "cannot set `{key}` on a value that is not a mapping"
            )),
        }
    };
    fieldpath::apply(object, spec, Create::Mapping, &mut set)?;
    Ok(calls == 1 && created == 1)
}

/// The path of `key` under the map a plain field spec path names.
fn spec_path(spec: &FieldSpec, key: &str) -> Option<Vec<String>> {
    if spec.path.contains(['\\', '[']) {
        return None;
    }
    let mut path: Vec<String> = spec.path.split('/').map(str::to_string).collect();
    path.push(key.to_string());
    Some(path)
}
