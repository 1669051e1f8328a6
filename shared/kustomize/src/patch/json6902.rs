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
    json_patch::patch(object, patch).map_err(|e| e.to_string())
}
