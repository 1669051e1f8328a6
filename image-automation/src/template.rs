//! Commit messages from Flux's Go `text/template` templates, rendered with `gtmpl` (Go template
//! syntax and builtins; Sprig functions are not available).
//!
//! Data, as in Flux: `.AutomationObject` (`namespace/name`), `.Values`, `.Changed.Changes`
//! (`OldValue`, `NewValue`, `Setter`), `.Changed.FileChanges` (file → object → changes) and
//! `.Changed.Objects` (object → changes), objects keyed `Kind/namespace/name`.

use std::collections::{BTreeMap, HashMap};

use gtmpl_value::Value;

use crate::setters::{Change, ObjectId};

/// Template fields Flux removed; a template using them is Stalled (`RemovedTemplateField`).
const REMOVED_FIELDS: &[&str] = &[".Updated", ".Changed.ImageResult"];

/// A template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "template uses '{0}', which was removed in image.toolkit.fluxcd.io/v1; use .Changed.Changes or .Changed.FileChanges in spec.git.commit.messageTemplate"
    )]
    RemovedField(&'static str),
    #[error("cannot parse spec.git.commit.messageTemplate: {0}")]
    Parse(String),
    #[error("cannot render spec.git.commit.messageTemplate: {0}")]
    Render(String),
}

/// The changes of one run: file → (object, change) pairs.
pub type FileChanges = BTreeMap<String, Vec<(ObjectId, Change)>>;

/// Checks `template` for removed fields and syntax, before any Git work.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    if let Some(field) = REMOVED_FIELDS
        .iter()
        .find(|field| uses_field(template, field))
    {
        return Err(TemplateError::RemovedField(field));
    }
    let mut parsed = gtmpl::Template::default();
    parsed
        .parse(template)
        .map_err(|e| TemplateError::Parse(e.to_string()))
}

/// Whether `field` appears as a whole field path (`.Updated`, not `.UpdatedAt`).
fn uses_field(template: &str, field: &str) -> bool {
    template.match_indices(field).any(|(at, _)| {
        !template[at + field.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Renders `template` for `automation` (`namespace/name`) and the run's changes.
pub fn render(
    template: &str,
    automation: &str,
    changes: &FileChanges,
    values: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    validate(template)?;
    let data = object([
        ("AutomationObject", Value::from(automation.to_owned())),
        ("Changed", changed(changes)),
        (
            "Values",
            Value::Map(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                    .collect(),
            ),
        ),
    ]);
    gtmpl::template(template, data).map_err(|e| TemplateError::Render(e.to_string()))
}

fn changed(changes: &FileChanges) -> Value {
    let mut all = Vec::new();
    let mut objects: HashMap<String, Vec<Value>> = HashMap::new();
    let mut files = HashMap::new();
    for (file, file_changes) in changes {
        let mut file_objects: HashMap<String, Vec<Value>> = HashMap::new();
        for (id, change) in file_changes {
            let value = change_value(change);
            all.push(value.clone());
            objects
                .entry(object_key(id))
                .or_default()
                .push(value.clone());
            file_objects.entry(object_key(id)).or_default().push(value);
        }
        files.insert(file.clone(), arrays(file_objects));
    }
    object([
        ("Changes", Value::Array(all)),
        ("Objects", arrays(objects)),
        ("FileChanges", Value::Map(files)),
    ])
}

fn object_key(id: &ObjectId) -> String {
    format!("{}/{}/{}", id.kind, id.namespace, id.name)
}

fn change_value(change: &Change) -> Value {
    object([
        ("OldValue", Value::from(change.old_value.clone())),
        ("NewValue", Value::from(change.new_value.clone())),
        ("Setter", Value::from(change.setter.clone())),
    ])
}

fn arrays(map: HashMap<String, Vec<Value>>) -> Value {
    Value::Map(map.into_iter().map(|(k, v)| (k, Value::Array(v))).collect())
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> FileChanges {
        let id = ObjectId {
            kind: "Deployment".into(),
            namespace: "apps".into(),
            name: "web".into(),
            ..ObjectId::default()
        };
        let change = Change {
            old_value: "app:1".into(),
            new_value: "app:2".into(),
            setter: "flux-system:app".into(),
        };
        BTreeMap::from([("apps/web.yaml".to_owned(), vec![(id, change)])])
    }

    #[test]
    fn flux_documented_templates_render() {
        let template = "Automated image update\n\nAutomation name: {{ .AutomationObject }}\n\nFiles:\n{{ range $filename, $_ := .Changed.FileChanges -}}\n- {{ $filename }}\n{{ end -}}\n\nObjects:\n{{ range $resource, $changes := .Changed.Objects -}}\n- {{ $resource }}\n  {{- range $_, $change := $changes }}\n    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n  {{ end -}}\n{{ end -}}\nenv={{ .Values.env }}";
        let values = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
        let message = render(template, "flux-system/auto", &changes(), &values).unwrap();
        assert!(
            message.contains("Automation name: flux-system/auto"),
            "{message}"
        );
        assert!(message.contains("- apps/web.yaml"), "{message}");
        assert!(message.contains("- Deployment/apps/web"), "{message}");
        assert!(message.contains("- app:1 -> app:2"), "{message}");
        assert!(message.ends_with("env=prod"), "{message}");
        let simple =
            "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}";
        let message = render(simple, "ns/a", &changes(), &BTreeMap::new()).unwrap();
        assert_eq!(message, "app:1 -> app:2\n");
    }

    #[test]
    fn removed_fields_and_syntax_errors() {
        assert!(matches!(
            validate("{{ range .Updated.Images }}{{ end }}"),
            Err(TemplateError::RemovedField(".Updated"))
        ));
        assert!(matches!(
            validate("{{ .Changed.ImageResult }}"),
            Err(TemplateError::RemovedField(".Changed.ImageResult"))
        ));
        assert!(validate("{{ .UpdatedAt }}").is_ok());
        assert!(matches!(
            validate("{{ range }"),
            Err(TemplateError::Parse(_))
        ));
    }
}
