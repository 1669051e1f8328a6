//! `labels`, `commonLabels` and `commonAnnotations`: set string entries in the maps their
//! field specs name (metadata, pod templates, selectors), creating the maps where allowed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::build::Context;
use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
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
            for spec in specs {
                let mut set = |value: &mut Value| {
                    if value.is_null() {
                        *value = Value::Object(Map::new());
                    }
                    match value {
                        Value::Object(map) => {
                            if !map.contains_key(key) && !crate::yaml::is_plain_string(key) {
                                return Err(format!(
                                    "kustomize cannot add the key `{key}`: it would read back as a non-string"
                                ));
                            }
                            map.insert(key.clone(), Value::String(text.clone()));
                            Ok(())
                        }
                        _ => Err(format!(
                            "cannot set `{key}` on a value that is not a mapping"
                        )),
                    }
                };
                fieldpath::apply(&mut resource.object, spec, Create::Mapping, &mut set)
                    .map_err(|e| Error::invalid(ctx.file, field, e))?;
            }
        }
    }
    Ok(())
}
