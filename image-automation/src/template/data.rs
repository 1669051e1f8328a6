//! The data a commit message template sees, shaped as Flux's: `.AutomationObject`, `.Changed`
//! and `.Values`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gotmpl::Value;

use super::FileChanges;
use crate::setters::{Change, ObjectId};

/// Prefix of a map key that stands for an object identifier (Go map keys can be structs).
const OBJECT_KEY_PREFIX: char = '\u{0}';
/// Separates the fields of an encoded object key; sorts below every printable character.
const OBJECT_KEY_SEPARATOR: char = '\u{1}';

/// The template's root value.
pub fn template_data(
    automation_namespace: &str,
    automation_name: &str,
    changes: &FileChanges,
    values: &BTreeMap<String, String>,
) -> Value {
    let values = values
        .iter()
        .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
        .collect::<BTreeMap<String, Value>>();
    map([
        (
            "AutomationObject",
            namespaced_name(automation_namespace, automation_name),
        ),
        ("Changed", changed(changes)),
        ("Values", Value::from(values)),
    ])
}

/// Go's `types.NamespacedName`: `Namespace`, `Name`, and its `String` method (`namespace/name`).
fn namespaced_name(namespace: &str, name: &str) -> Value {
    map([
        ("Namespace", Value::from(namespace)),
        ("Name", Value::from(name)),
        ("String", Value::from(format!("{namespace}/{name}"))),
    ])
}

/// `.Changed` as Flux's `update.Result`: `FileChanges` (file → object → changes), and what its
/// `Changes()` and `Objects()` methods return. Go visits the files and objects of those methods
/// in random map order; here they are visited sorted (files by path, objects in Go's struct
/// order), which is one of Go's outputs: `Changes` lists each distinct change once, and an object
/// changed in two files has, in `Objects`, the changes of the last file.
fn changed(changes: &FileChanges) -> Value {
    let mut all = Vec::new();
    let mut seen = BTreeSet::new();
    let mut objects = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (file, file_changes) in changes {
        let mut file_objects: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
        for (id, change) in file_changes {
            file_objects
                .entry(encode_object_key(id))
                .or_default()
                .push(change);
        }
        for (key, object_changes) in &file_objects {
            for change in object_changes {
                if seen.insert((&change.old_value, &change.new_value, &change.setter)) {
                    all.push(change_value(change));
                }
            }
            objects.insert(key.clone(), change_list(object_changes));
        }
        let file_objects = file_objects
            .iter()
            .map(|(key, object_changes)| (key.clone(), change_list(object_changes)))
            .collect::<BTreeMap<String, Value>>();
        files.insert(file.clone(), Value::from(file_objects));
    }
    map([
        ("Changes", Value::from(all)),
        ("Objects", Value::from(objects)),
        ("FileChanges", Value::from(files)),
    ])
}

fn change_list(changes: &[&Change]) -> Value {
    Value::from(
        changes
            .iter()
            .map(|change| change_value(change))
            .collect::<Vec<_>>(),
    )
}

fn change_value(change: &Change) -> Value {
    map([
        ("OldValue", Value::from(change.old_value.as_str())),
        ("NewValue", Value::from(change.new_value.as_str())),
        ("Setter", Value::from(change.setter.as_str())),
    ])
}

/// Encodes `id` as a map key that sorts as Go sorts the struct (APIVersion, Kind, Name, Namespace).
fn encode_object_key(id: &ObjectId) -> String {
    let sep = OBJECT_KEY_SEPARATOR;
    format!(
        "{OBJECT_KEY_PREFIX}{}{sep}{}{sep}{}{sep}{}",
        id.api_version, id.kind, id.name, id.namespace
    )
}

/// The object identifier an encoded map key stands for, with Flux's field names.
pub fn decode_object_key(key: &str) -> Option<Value> {
    let mut fields = key
        .strip_prefix(OBJECT_KEY_PREFIX)?
        .split(OBJECT_KEY_SEPARATOR);
    let (api_version, kind, name, namespace) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    Some(map([
        ("APIVersion", Value::from(api_version)),
        ("Kind", Value::from(kind)),
        ("Name", Value::from(name)),
        ("Namespace", Value::from(namespace)),
    ]))
}

/// How Go prints a map key: an object identifier as `{{{apiVersion Kind} {name namespace}}}`.
pub fn print_key(key: &str) -> String {
    let Some(rest) = key.strip_prefix(OBJECT_KEY_PREFIX) else {
        return key.to_owned();
    };
    let fields: Vec<&str> = rest.split(OBJECT_KEY_SEPARATOR).collect();
    match fields.as_slice() {
        [api_version, kind, name, namespace] => {
            format!("{{{{{{{api_version} {kind}}} {{{name} {namespace}}}}}}}")
        }
        _ => key.to_owned(),
    }
}

fn map<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::from(
        fields
            .into_iter()
            .map(|(key, value)| (Arc::<str>::from(key), value))
            .collect::<BTreeMap<Arc<str>, Value>>(),
    )
}
