//! `namespace`: sets the namespace of namespaced objects and of the fields kustomize knows to
//! hold namespaces (a Namespace object's own name, APIService and CRD webhook services, and
//! RoleBinding subjects named `default`).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
use crate::load::Context;
use crate::resmap::ResMap;
use crate::resource::{Gvk, Resource, ensure_object, scalar_text};

/// Which RoleBinding and ClusterRoleBinding subjects get the namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Subjects {
    /// Subjects named `default` (the `namespace` field's behaviour).
    #[default]
    DefaultOnly,
    /// Every ServiceAccount subject.
    AllServiceAccounts,
    None,
}

/// The NamespaceTransformer's options beyond the namespace and field specs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    /// Only set namespaces that are missing or empty.
    pub unset_only: bool,
    pub subjects: Subjects,
}

pub(crate) fn apply(
    resources: &mut ResMap,
    namespace: &str,
    specs: &[FieldSpec],
    options: Options,
    ctx: &Context,
) -> Result<()> {
    for resource in &mut resources.resources {
        if resource.object.as_object().is_none_or(|m| m.is_empty()) {
            continue;
        }
        resource.store_previous_id();
        set_namespace(resource, namespace, specs, options)
            .map_err(|e| Error::invalid(ctx.file, "namespace", e))?;
    }
    if let Some(id) = resources.duplicate_id() {
        return Err(Error::invalid(
            ctx.file,
            "namespace",
            format!("setting the namespace produces an id conflict for {id}"),
        ));
    }
    Ok(())
}

fn set_namespace(
    resource: &mut Resource,
    namespace: &str,
    specs: &[FieldSpec],
    options: Options,
) -> Result<(), String> {
    let api_version = resource.api_version();
    let gvk = resource.gvk();
    let mut set = |value: &mut Value| match value {
        Value::Object(_) | Value::Array(_) => {
            Err("namespace field specs must target scalar nodes".to_string())
        }
        scalar => {
            if !options.unset_only || scalar_text(scalar).is_empty() {
                *scalar = Value::String(namespace.to_string());
            }
            Ok(())
        }
    };
    if !gvk.is_cluster_scoped() {
        let spec = FieldSpec {
            gvk: Gvk::default(),
            path: "metadata/namespace".to_string(),
            create: true,
        };
        fieldpath::apply(&mut resource.object, &spec, Create::Scalar, &mut set)?;
    }
    if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
        set_subjects(&mut resource.object, namespace, options)?;
    }
    for spec in specs {
        if spec.path == "metadata/namespace"
            || (spec.path == "metadata/name" && api_version != "v1")
        {
            continue;
        }
        fieldpath::apply(&mut resource.object, spec, Create::Scalar, &mut set)?;
    }
    Ok(())
}

/// Sets the namespace of the binding subjects the options select.
fn set_subjects(object: &mut Value, namespace: &str, options: Options) -> Result<(), String> {
    let Some(subjects) = object.get_mut("subjects") else {
        return Ok(());
    };
    let Value::Array(subjects) = subjects else {
        return if subjects.is_null() {
            Ok(())
        } else {
            Err("`subjects` must be a list".to_string())
        };
    };
    for subject in subjects {
        let text = |key: &str| subject.get(key).map(scalar_text).unwrap_or_default();
        let selected = match options.subjects {
            Subjects::DefaultOnly => text("name") == "default",
            Subjects::AllServiceAccounts => text("kind") == "ServiceAccount",
            Subjects::None => false,
        };
        if selected && (!options.unset_only || text("namespace").is_empty()) {
            ensure_object(subject).insert(
                "namespace".to_string(),
                Value::String(namespace.to_string()),
            );
        }
    }
    Ok(())
}
