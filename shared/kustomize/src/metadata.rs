//! `buildMetadata` of the built kustomization: kustomize's origin annotations (where each object
//! came from), transformer annotations (which transformers ran over it) and its managed-by
//! label. Such annotations in the inputs never reach the output unless asked for, as in kustomize.

use std::path::{Component, Path};

use serde_json::{Map, Value};

use crate::kustomization::Kustomization;
use crate::resource::{Resource, ensure_object};

/// The annotation holding an object's origin.
pub(crate) const ORIGIN: &str = "config.kubernetes.io/origin";
/// The annotation listing the transformers that ran over an object.
const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The kustomize release whose output this engine matches, as its managed-by label names it.
pub const KUSTOMIZE_VERSION: &str = "v5.8.2";

/// The `buildMetadata` options in effect.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BuildMetadata {
    pub origin: bool,
    pub transformations: bool,
    pub managed_by: bool,
}

impl BuildMetadata {
    /// The options of the built kustomization (nested ones are ignored, as by kustomize);
    /// unknown options are ignored.
    pub fn of(kustomization: &Kustomization) -> Self {
        let has = |option: &str| kustomization.build_metadata.iter().any(|o| o == option);
        Self {
            origin: has("originAnnotations"),
            transformations: has("transformerAnnotations"),
            managed_by: has("managedByLabel"),
        }
    }

    /// Whether origins and transformer runs are recorded during the build (kept or not at the end).
    pub fn tracks(self) -> bool {
        self.origin || self.transformations
    }

    /// Drops origin and transformer annotations unless asked for, and adds the managed-by label
    /// if asked for.
    pub fn finish(self, resources: &mut [Resource]) {
        for resource in resources {
            let Some(metadata) = resource
                .object
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
                if !self.origin {
                    annotations.remove(ORIGIN);
                }
                if !self.transformations {
                    annotations.remove(TRANSFORMATIONS);
                }
            }
            if self.managed_by {
                let label = format!("kustomize-{KUSTOMIZE_VERSION}");
                entry_map(metadata, "labels").insert(MANAGED_BY.to_owned(), Value::String(label));
            }
        }
    }
}

fn entry_map<'a>(metadata: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    ensure_object(metadata.entry(key.to_owned()).or_insert(Value::Null))
}

/// The origin of an object read from `file`, relative to the built directory `top`.
pub(crate) fn file_origin(top: &Path, file: &Path) -> String {
    format!("path: {}\n", relative(top, file))
}

/// The origin of an object made by the built-in generator `kind` of `kustomization_file`.
pub(crate) fn generator_origin(top: &Path, kustomization_file: &Path, kind: &str) -> String {
    format!(
        "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n",
        relative(top, kustomization_file)
    )
}

/// A transformer as kustomize records it: the file configuring it and its config's identity.
#[derive(Clone, Debug)]
pub(crate) struct TransformerOrigin {
    configured_in: String,
    api_version: String,
    kind: String,
    name: String,
    namespace: String,
}

impl TransformerOrigin {
    /// The built-in transformer `kind` configured by a field of `kustomization_file`.
    pub fn builtin(top: &Path, kustomization_file: &Path, kind: &str) -> Self {
        Self {
            configured_in: relative(top, kustomization_file),
            api_version: "builtin".to_owned(),
            kind: kind.to_owned(),
            name: String::new(),
            namespace: String::new(),
        }
    }

    /// A `transformers` entry: its config object, read from `configured_in` (relative to the top).
    pub fn plugin(configured_in: String, config: &Value) -> Self {
        let text = |pointer: &str| {
            config
                .pointer(pointer)
                .map(crate::resource::scalar_text)
                .unwrap_or_default()
        };
        Self {
            configured_in,
            api_version: text("/apiVersion"),
            kind: text("/kind"),
            name: text("/metadata/name"),
            namespace: text("/metadata/namespace"),
        }
    }

    /// The origin's YAML lines (kustomize's field order, empty fields left out).
    fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("configuredIn: {}", self.configured_in)];
        lines.push("configuredBy:".to_owned());
        for (key, value) in [
            ("apiVersion", &self.api_version),
            ("kind", &self.kind),
            ("name", &self.name),
            ("namespace", &self.namespace),
        ] {
            if !value.is_empty() {
                lines.push(format!("  {key}: {value}"));
            }
        }
        lines
    }
}

/// Records that `transformer` ran over every object, as kustomize does: appended to the
/// object's transformations, or as its origin when it has none.
pub(crate) fn record_transformation(resources: &mut [Resource], transformer: &TransformerOrigin) {
    let lines = transformer.lines();
    let as_origin: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let as_item: String = lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("{}{line}\n", if i == 0 { "- " } else { "  " }))
        .collect();
    for resource in resources {
        let Some(metadata) = resource
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let annotations = entry_map(metadata, "annotations");
        if !annotations.contains_key(ORIGIN) {
            annotations.insert(ORIGIN.to_owned(), Value::String(as_origin.clone()));
            continue;
        }
        let mut list = match annotations.get(TRANSFORMATIONS) {
            Some(Value::String(existing)) if !existing.trim().is_empty() => existing.clone(),
            _ => String::new(),
        };
        if !list.is_empty() && !list.ends_with('\n') {
            list.push('\n');
        }
        list.push_str(&as_item);
        annotations.insert(TRANSFORMATIONS.to_owned(), Value::String(list));
    }
}

/// Sets the origin annotation of `resource`; `overwrite` false keeps one already there.
pub(crate) fn set_origin(resource: &mut Resource, origin: &str, overwrite: bool) {
    let Some(metadata) = resource
        .object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let annotations = entry_map(metadata, "annotations");
    if overwrite || !annotations.contains_key(ORIGIN) {
        annotations.insert(ORIGIN.to_owned(), Value::String(origin.to_owned()));
    }
}

/// `to` relative to the directory `from`, with `/` separators (both absolute and clean).
pub(crate) fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|part| part.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_relative_to_the_built_directory() {
        let top = Path::new("/src/overlays/prod");
        assert_eq!(
            file_origin(top, Path::new("/src/base/svc.yaml")),
            "path: ../../base/svc.yaml\n"
        );
        assert_eq!(
            generator_origin(
                top,
                Path::new("/src/overlays/prod/kustomization.yaml"),
                "SecretGenerator"
            ),
            "configuredIn: kustomization.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: SecretGenerator\n"
        );
    }
}
