//! The kustomization fields Flux sets from a Kustomization's spec, merged into the
//! kustomization file of a per-build copy of the artifact.

use std::path::Path;

use serde_json::{Map, Value, json};
use sluice_api::kustomize::KustomizationSpec;
use sluice_kustomize::KUSTOMIZATION_FILE_NAMES;

use super::{BuildError, display, kustomize_error};

/// The kustomization fields Flux sets from the spec, in Flux's order; empty when none apply.
pub(super) fn overlay_fields(
    spec: &KustomizationSpec,
    dir: &Path,
) -> Result<Map<String, Value>, BuildError> {
    let mut fields = Map::new();
    if let Some(namespace) = &spec.target_namespace {
        fields.insert("namespace".to_owned(), json!(namespace));
    }
    if let Some(prefix) = &spec.name_prefix {
        fields.insert("namePrefix".to_owned(), json!(prefix));
    }
    if let Some(suffix) = &spec.name_suffix {
        fields.insert("nameSuffix".to_owned(), json!(suffix));
    }
    if !spec.patches.is_empty() {
        fields.insert("patches".to_owned(), json!(spec.patches));
    }
    if !spec.images.is_empty() {
        fields.insert("images".to_owned(), json!(spec.images));
    }
    let mut components = Vec::new();
    for component in &spec.components {
        if Path::new(component).is_absolute() || component.contains("://") {
            return Err(BuildError::RemoteComponent(component.clone()));
        }
        if spec.ignore_missing_components && !dir.join(component).exists() {
            continue;
        }
        components.push(json!(component));
    }
    if !components.is_empty() {
        fields.insert("components".to_owned(), Value::Array(components));
    }
    if !spec.build_metadata.is_empty() {
        fields.insert("buildMetadata".to_owned(), json!(spec.build_metadata));
    }
    Ok(fields)
}

/// Copies the regular files and directories of `from` into `to` (symlinks are skipped).
pub(super) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let target = to.join(entry.file_name());
        if file_type.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if file_type.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Merges `overlay` into the kustomization file of `dir` (generated like Flux when missing).
pub(super) fn write_overlay(
    root: &Path,
    dir: &Path,
    overlay: Map<String, Value>,
) -> Result<(), BuildError> {
    let existing = KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|file| file.is_file());
    let (file, mut kustomization) = match existing {
        Some(file) => {
            let invalid = |reason: String| BuildError::InvalidKustomization {
                file: display(root, &file),
                reason,
            };
            let text =
                std::fs::read_to_string(&file).map_err(|error| invalid(error.to_string()))?;
            let document = sluice_kustomize::parse_yaml_stream(&text)
                .map_err(|error| invalid(error.to_string()))?
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            let kustomization = match document {
                Value::Object(map) => map,
                Value::Null => Map::new(),
                _ => return Err(invalid("expected a mapping".to_owned())),
            };
            (file, kustomization)
        }
        None => {
            let resources = sluice_kustomize::flux_resources(dir)
                .map_err(|error| kustomize_error(root, &error))?;
            let generated = json!({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": resources,
            });
            let generated = match generated {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            (dir.join("kustomization.yaml"), generated)
        }
    };
    for (field, value) in overlay {
        match (field.as_str(), value) {
            ("patches" | "components", Value::Array(added)) => {
                let list = kustomization
                    .entry(field)
                    .or_insert_with(|| Value::Array(Vec::new()));
                match list {
                    Value::Array(items) => items.extend(added),
                    other => *other = Value::Array(added),
                }
            }
            ("images", Value::Array(added)) => merge_images(&mut kustomization, added),
            (_, value) => {
                kustomization.insert(field, value);
            }
        }
    }
    let text = serde_json::to_string(&Value::Object(kustomization))
        .map_err(|error| BuildError::Workspace(std::io::Error::other(error)))?;
    std::fs::write(&file, text).map_err(BuildError::Workspace)
}

/// Replaces images of the same name and appends the others, as Flux does.
fn merge_images(kustomization: &mut Map<String, Value>, added: Vec<Value>) {
    let images = kustomization
        .entry("images")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !images.is_array() {
        *images = Value::Array(Vec::new());
    }
    let Some(images) = images.as_array_mut() else {
        return;
    };
    for image in added {
        match images
            .iter_mut()
            .find(|known| known["name"] == image["name"])
        {
            Some(known) => *known = image,
            None => images.push(image),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_images_replaces_by_name() {
        let mut kustomization = Map::new();
        kustomization.insert(
            "images".to_owned(),
            json!([{"name": "a", "newTag": "1"}, {"name": "b", "newTag": "1"}]),
        );
        merge_images(
            &mut kustomization,
            vec![json!({"name": "b", "newTag": "2"}), json!({"name": "c"})],
        );
        assert_eq!(
            kustomization["images"],
            json!([{"name": "a", "newTag": "1"}, {"name": "b", "newTag": "2"}, {"name": "c"}])
        );
    }
}
