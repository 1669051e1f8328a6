//! `buildMetadata` of the built kustomization: kustomize's origin annotations (where each object
//! came from) and its managed-by label. Origin annotations in the inputs never reach the output
//! unless asked for, as in kustomize.

use std::path::{Component, Path};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::kustomization::Kustomization;
use crate::resource::{Resource, ensure_object};

/// The annotation holding an object's origin.
pub(crate) const ORIGIN: &str = "config.kubernetes.io/origin";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The kustomize release whose output this engine matches, as its managed-by label names it.
pub const KUSTOMIZE_VERSION: &str = "v5.8.2";

/// The `buildMetadata` options in effect.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BuildMetadata {
    pub origin: bool,
    pub managed_by: bool,
}

impl BuildMetadata {
    /// The options of the built kustomization (nested ones are ignored, as by kustomize);
    /// `transformerAnnotations` is refused, unknown options are ignored.
    pub fn of(kustomization: &Kustomization) -> Result<Self> {
        let has = |option: &str| kustomization.build_metadata.iter().any(|o| o == option);
        if has("transformerAnnotations") {
            return Err(Error::unsupported(
                "`buildMetadata: [transformerAnnotations]`",
                &kustomization.file,
            ));
        }
        Ok(Self {
            origin: has("originAnnotations"),
            managed_by: has("managedByLabel"),
        })
    }

    /// Drops origin annotations unless asked for, and adds the managed-by label if asked for.
    pub fn finish(self, resources: &mut [Resource]) {
        for resource in resources {
            let Some(metadata) = resource
                .object
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            if !self.origin
                && let Some(Value::Object(annotations)) = metadata.get_mut("annotations")
            {
                annotations.remove(ORIGIN);
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
fn relative(from: &Path, to: &Path) -> String {
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
