//! The `patches`, `patchesStrategicMerge` and `patchesJson6902` fields.

pub(crate) mod json6902;
pub(crate) mod strategic;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::kustomization::Patch;
use crate::load::Context;
use crate::load::objects_from_text;
use crate::resmap::ResMap;
use crate::resource::{ResId, Resource};

/// A patch's content once parsed.
enum Parsed {
    Strategic(Vec<Resource>),
    Json(json_patch::Patch),
}

/// Parses patch text as strategic-merge objects or a JSON patch; it must be exactly one.
fn parse(text: &str, ctx: &Context, field: &str) -> Result<Parsed> {
    let strategic = objects_from_text(text, ctx.file);
    let json = json6902::parse(text).map_err(|e| Error::invalid(ctx.file, field, e))?;
    match (strategic, json) {
        (Ok(objects), Some(_)) if !objects.is_empty() => Err(Error::invalid(
            ctx.file,
            field,
            "the patch is both a strategic-merge and a JSON patch",
        )),
        (Ok(objects), _) => Ok(Parsed::Strategic(
            objects
                .into_iter()
                .map(|o| Resource::new(o, ctx.file.to_path_buf()))
                .collect(),
        )),
        (Err(_), Some(json)) => Ok(Parsed::Json(json)),
        (Err(e), None) => Err(Error::invalid(
            ctx.file,
            field,
            format!("not a strategic-merge or JSON patch: {e}"),
        )),
    }
}

/// The text of a patch given inline or by `path`.
fn patch_text(patch: &Patch, ctx: &Context, field: &str) -> Result<String> {
    match (patch.patch.trim().is_empty(), patch.path.is_empty()) {
        (true, true) => Err(Error::invalid(
            ctx.file,
            field,
            "must specify one of patch and path",
        )),
        (false, false) => Err(Error::invalid(
            ctx.file,
            field,
            "patch and path can't be set at the same time",
        )),
        (false, true) => Ok(patch.patch.trim().to_string()),
        (true, false) => {
            let (path, bytes) = ctx.read(&patch.path, &format!("{field}.path"))?;
            crate::load::text(&path, bytes)
        }
    }
}

/// Applies the `patches` entries in order.
pub(crate) fn apply_patches(
    resources: &mut ResMap,
    patches: &[Patch],
    ctx: &Context,
    field_of: &dyn Fn(usize) -> String,
) -> Result<()> {
    for (i, patch) in patches.iter().enumerate() {
        let field = field_of(i);
        let text = patch_text(patch, ctx, &field)?;
        match parse(&text, ctx, &field)? {
            Parsed::Strategic(mut objects) => {
                for object in &mut objects {
                    object.allow_name_change = patch.allow_name_change;
                    object.allow_kind_change = patch.allow_kind_change;
                }
                match &patch.target {
                    Some(target) => {
                        if objects.len() > 1 {
                            return Err(Error::invalid(
                                ctx.file,
                                &field,
                                "multiple strategic-merge patches in one entry cannot have a target",
                            ));
                        }
                        let Some(object) = objects.into_iter().next() else {
                            continue;
                        };
                        let selected =
                            resources.select(target, ctx.file, &format!("{field}.target"))?;
                        apply_strategic_to(resources, &selected, &object, true, ctx, &field)?;
                    }
                    None => {
                        for object in objects {
                            let index = unique_target(resources, &object.org_id(), ctx, &field)?;
                            apply_strategic_to(resources, &[index], &object, false, ctx, &field)?;
                        }
                    }
                }
            }
            Parsed::Json(operations) => {
                let Some(target) = &patch.target else {
                    return Err(Error::invalid(
                        ctx.file,
                        &field,
                        "a JSON patch needs a target",
                    ));
                };
                for index in resources.select(target, ctx.file, &format!("{field}.target"))? {
                    let resource = &mut resources.resources[index];
                    resource.store_previous_id();
                    json6902::apply(&mut resource.object, &operations, true)
                        .map_err(|e| patch_error(ctx, &field, resource, e))?;
                    // The patch rebuilds the object: no field shares a value any more.
                    resource.linked.clear();
                }
            }
        }
    }
    Ok(())
}

/// Applies the legacy `patchesStrategicMerge` entries (file paths or inline YAML).
pub(crate) fn apply_strategic_merge_files(
    resources: &mut ResMap,
    entries: &[String],
    ctx: &Context,
    field_of: &dyn Fn(usize) -> String,
) -> Result<()> {
    let mut patches = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = field_of(i);
        let inline = objects_from_text(entry, ctx.file)
            .ok()
            .filter(|objects| !objects.is_empty());
        let objects = match inline {
            Some(objects) => objects,
            None => {
                let (path, bytes) = ctx.read(entry, &field)?;
                objects_from_text(&crate::load::text(&path, bytes)?, &path)?
            }
        };
        patches.extend(
            objects
                .into_iter()
                .map(|o| (field.clone(), Resource::new(o, ctx.file.to_path_buf()))),
        );
    }
    if patches.is_empty() {
        return Err(Error::invalid(
            ctx.file,
            "patchesStrategicMerge",
            "the patches are empty",
        ));
    }
    for (field, patch) in patches {
        let index = unique_target(resources, &patch.org_id(), ctx, &field)?;
        apply_strategic_to(resources, &[index], &patch, true, ctx, &field)?;
    }
    Ok(())
}

/// Applies the legacy `patchesJson6902` entries.
pub(crate) fn apply_json6902_entries(
    resources: &mut ResMap,
    entries: &[Patch],
    ctx: &Context,
    field_of: &dyn Fn(usize) -> String,
) -> Result<()> {
    for (i, entry) in entries.iter().enumerate() {
        let field = field_of(i);
        let target = entry.target.clone().unwrap_or_default();
        if target.name.is_empty() {
            return Err(Error::invalid(
                ctx.file,
                format!("{field}.target.name"),
                "must specify the target name",
            ));
        }
        let text = patch_text(entry, ctx, &field)?;
        let operations =
            match json6902::parse(&text).map_err(|e| Error::invalid(ctx.file, &field, e))? {
                Some(operations) if !operations.0.is_empty() => operations,
                _ => {
                    return Err(Error::invalid(
                        ctx.file,
                        &field,
                        "the JSON patch is empty or not a list of operations",
                    ));
                }
            };
        for index in resources.select(&target, ctx.file, &format!("{field}.target"))? {
            let resource = &mut resources.resources[index];
            json6902::apply(&mut resource.object, &operations, false)
                .map_err(|e| patch_error(ctx, &field, resource, e))?;
            resource.linked.clear();
        }
    }
    Ok(())
}

fn patch_error(ctx: &Context, field: &str, resource: &Resource, message: String) -> Error {
    Error::invalid(
        ctx.file,
        field,
        format!("patching {}: {message}", resource.cur_id()),
    )
}

/// The one resource any of whose ids equals `id`.
fn unique_target(resources: &ResMap, id: &ResId, ctx: &Context, field: &str) -> Result<usize> {
    match resources.matching_any_id(id).as_slice() {
        [index] => Ok(*index),
        [] => Err(Error::invalid(
            ctx.file,
            field,
            format!("no resource matches strategic merge patch {id}"),
        )),
        _ => Err(Error::invalid(
            ctx.file,
            field,
            format!("multiple resources match strategic merge patch {id}"),
        )),
    }
}

/// Merges `patch` into each selected resource; resources the patch empties are dropped.
/// With `take_target_api_version`, the patch is first given each target's apiVersion.
fn apply_strategic_to(
    resources: &mut ResMap,
    selected: &[usize],
    patch: &Resource,
    take_target_api_version: bool,
    ctx: &Context,
    field: &str,
) -> Result<()> {
    let mut emptied = Vec::new();
    for &index in selected {
        let resource = &mut resources.resources[index];
        let mut patch_object = patch.object.clone();
        if take_target_api_version && let Some(map) = patch_object.as_object_mut() {
            map.insert(
                "apiVersion".to_string(),
                Value::String(resource.api_version()),
            );
        }
        let (name, namespace, kind) = (resource.name(), resource.namespace(), resource.kind());
        if patch.allow_name_change || patch.allow_kind_change {
            resource.store_previous_id();
        }
        let merged = strategic::merge(&resource.object, &patch_object)
            .map_err(|e| patch_error(ctx, field, resource, e))?;
        match merged {
            Some(object) if object.as_object().is_some_and(|m| !m.is_empty()) => {
                resource.object = object;
                if !patch.allow_kind_change {
                    resource.set_kind(&kind);
                }
                if !patch.allow_name_change {
                    resource.set_name(&name);
                }
                resource.set_namespace(&namespace);
                crate::linked::propagate(resource);
            }
            _ => emptied.push(index),
        }
    }
    let mut index = 0;
    resources.resources.retain(|_| {
        index += 1;
        !emptied.contains(&(index - 1))
    });
    Ok(())
}
