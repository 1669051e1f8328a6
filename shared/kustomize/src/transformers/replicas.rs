//! `replicas`: sets `spec.replicas` of the named Deployments, ReplicaSets, StatefulSets and
//! ReplicationControllers (matching current or earlier names).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
use crate::kustomization::Replica;
use crate::load::Context;
use crate::resmap::ResMap;

pub(crate) fn apply(
    resources: &mut ResMap,
    replica: &Replica,
    specs: &[FieldSpec],
    ctx: &Context,
    field: &str,
) -> Result<()> {
    let mut found = false;
    for spec in specs {
        for resource in &mut resources.resources {
            let matches = resource
                .all_ids()
                .iter()
                .any(|id| id.name == replica.name && id.gvk.is_selected_by(&spec.gvk));
            if !matches {
                continue;
            }
            found = true;
            let mut set = |value: &mut Value| match value {
                Value::Object(_) | Value::Array(_) => {
                    Err("`replicas` must be a scalar".to_string())
                }
                scalar => {
                    *scalar = Value::Number(replica.count.into());
                    Ok(())
                }
            };
            fieldpath::apply(&mut resource.object, spec, Create::Scalar, &mut set)
                .map_err(|e| Error::invalid(ctx.file, field, e))?;
        }
    }
    if !found {
        let kinds: Vec<String> = specs.iter().map(|s| s.gvk.to_string()).collect();
        return Err(Error::invalid(
            ctx.file,
            field,
            format!(
                "resource with name {} does not match a config with the following GVK [{}]",
                replica.name,
                kinds.join(" ")
            ),
        ));
    }
    Ok(())
}
