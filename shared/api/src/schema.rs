//! Hand-written schema fragments where the derived schema would be looser than Flux's CRDs.

use schemars::{Schema, SchemaGenerator, json_schema};

/// `metav1.Condition` list with the apiserver's own validation (patterns, lengths, status enum).
pub(crate) fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "description": "One aspect of the object's current state.",
            "type": "object",
            "properties": {
                "lastTransitionTime": {
                    "description": "When the condition last changed status.",
                    "type": "string",
                    "format": "date-time"
                },
                "message": {
                    "description": "Human-readable details about the transition; may be empty.",
                    "type": "string",
                    "maxLength": 32768
                },
                "observedGeneration": {
                    "description": "The .metadata.generation the condition was computed from.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0
                },
                "reason": {
                    "description": "CamelCase machine-readable cause of the last transition.",
                    "type": "string",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
                },
                "status": {
                    "description": "True, False or Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"]
                },
                "type": {
                    "description": "Condition type in CamelCase or foo.example.com/CamelCase.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                }
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"]
        }
    })
}

/// Serde helper: skip `false` booleans like Go's `omitempty`.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// Removes the `default` of every property, for Go fields serialized without `omitempty`
/// whose Rust counterpart needs `#[serde(default)]` (Flux's CRDs give them no default).
pub(crate) fn drop_property_defaults(schema: &mut Schema) {
    if let Some(properties) = schema
        .get_mut("properties")
        .and_then(|properties| properties.as_object_mut())
    {
        for property in properties.values_mut() {
            if let Some(property) = property.as_object_mut() {
                property.remove("default");
            }
        }
    }
}
