//! `namePrefix` and `nameSuffix`: rename objects (except CRDs, APIServices and Namespaces),
//! recording the old name so references can follow.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
use crate::load::Context;
use crate::resmap::ResMap;
use crate::resource::{Gvk, scalar_text};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Affix {
    Prefix,
    Suffix,
}

/// Kinds kustomize never renames.
fn is_skipped(gvk: &Gvk) -> bool {
    gvk.kind == "CustomResourceDefinition"
        || gvk.kind == "Namespace"
        || (gvk.kind == "APIService" && gvk.group == "apiregistration.k8s.io")
}

pub(crate) fn apply(
    resources: &mut ResMap,
    affix: Affix,
    text: &str,
    specs: &[FieldSpec],
    ctx: &Context,
) -> Result<()> {
    let field = if affix == Affix::Prefix {
        "namePrefix"
    } else {
        "nameSuffix"
    };
    for resource in &mut resources.resources {
        let original = resource.org_id().gvk;
        if is_skipped(&original) {
            continue;
        }
        for spec in specs.iter().filter(|s| original.is_selected_by(&s.gvk)) {
            if spec.path == "metadata/name" {
                match affix {
                    Affix::Prefix => resource.prefixes.push(text.to_string()),
                    Affix::Suffix => resource.suffixes.push(text.to_string()),
                }
                resource.store_previous_id();
            }
            let mut set = |value: &mut Value| match value {
                Value::Object(_) | Value::Array(_) => Err("a name must be a scalar".to_string()),
                scalar => {
                    let name = scalar_text(scalar);
                    *scalar = Value::String(match affix {
                        Affix::Prefix => format!("{text}{name}"),
                        Affix::Suffix => format!("{name}{text}"),
                    });
                    Ok(())
                }
            };
            fieldpath::apply(&mut resource.object, spec, Create::Scalar, &mut set)
                .map_err(|e| Error::invalid(ctx.file, field, e))?;
        }
    }
    Ok(())
}
