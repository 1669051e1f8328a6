//! RFC 6902 JSON patches, given as JSON or as a YAML list of operations.

use serde_json::Value;

/// Parses a JSON patch; `Ok(None)` when the text is not a list of operations.
pub(crate) fn parse(text: &str) -> Result<Option<json_patch::Patch>, String> {
    let text = text.trim_start_matches('\u{feff}');
    let value: Value = if text.starts_with('[') {
        match serde_json::from_str(text) {
            Ok(value) => value,
            Err(_) => match crate::yaml::parse_single_as(text, crate::yaml::Dialect::V2) {
                Ok(value) => value,
                Err(_) => return Ok(None),
            },
        }
    } else {
        match crate::yaml::parse_single_as(text, crate::yaml::Dialect::V2) {
            Ok(value) => value,
            Err(_) => return Ok(None),
        }
    };
    if !value.is_array() {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("invalid JSON patch: {e}"))
}

/// Applies a JSON patch to an object. With `ensure_annotations` (the `patches` field, where
/// kustomize has just recorded the object's id in its annotations) the object first gets an
/// empty annotations map; an empty map is dropped from the output.
pub(crate) fn apply(
    object: &mut Value,
    patch: &json_patch::Patch,
    ensure_annotations: bool,
) -> Result<(), String> {
    if ensure_annotations
        && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    let mut patched = object.clone();
    for (i, operation) in patch.0.iter().enumerate() {
        let operation = replace_missing_as_add(&patched, operation);
        json_patch::patch(&mut patched, std::slice::from_ref(&operation)).map_err(|mut e| {
            e.operation = i;
            e.to_string()
        })?;
    }
    *object = patched;
    Ok(())
}

/// kustomize's patch library treats `replace` of a key missing from an existing mapping as `add`.
fn replace_missing_as_add(
    object: &Value,
    operation: &json_patch::PatchOperation,
) -> json_patch::PatchOperation {
    if let json_patch::PatchOperation::Replace(replace) = operation
        && let Some(parent) = replace.path.parent()
        && object
            .pointer(parent.as_str())
            .is_some_and(Value::is_object)
        && object.pointer(replace.path.as_str()).is_none()
    {
        return json_patch::PatchOperation::Add(json_patch::AddOperation {
            path: replace.path.clone(),
            value: replace.value.clone(),
        });
    }
    operation.clone()
}
