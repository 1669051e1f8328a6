//! Rendering a path of an artifact into Kubernetes objects with the native kustomize engine.
//!
//! [`build`] overlays the Kustomization's build fields onto the kustomization file the way Flux
//! does (in a per-build copy, so the artifact cache is never modified), builds it, and then sets
//! `commonMetadata` on every object, as Flux does after the build.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value, json};
use sluice_api::kustomize::KustomizationSpec;
use sluice_kustomize::{BuildOptions, FileAccess, KUSTOMIZATION_FILE_NAMES, MissingKustomization};

/// Rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kustomization path {0:?} not found in the artifact; check spec.path")]
    PathNotFound(String),
    #[error("kustomization path {0:?} escapes the artifact root; use a relative path inside it")]
    PathEscapes(String),
    #[error(
        "{field} is not supported by this controller's build: {reason}; remove it from the Kustomization"
    )]
    Unsupported {
        field: &'static str,
        reason: &'static str,
    },
    #[error("spec.components: component path {0:?} must be a local relative path")]
    RemoteComponent(String),
    #[error("preparing the build directory failed: {0}; check the temporary directory is writable")]
    Workspace(std::io::Error),
    #[error("{file} is not valid YAML: {reason}; fix the file in the source")]
    InvalidKustomization { file: String, reason: String },
    #[error("kustomize build failed: {0}")]
    Kustomize(String),
    #[error(
        "kustomize build failed: {0}; remote bases are never fetched by this controller, vendor them into the source"
    )]
    RemoteBase(String),
}

/// Renders `path` under `root_dir` with the Kustomization's build-time fields.
pub fn build(
    root_dir: &Path,
    path: &str,
    spec: &KustomizationSpec,
) -> Result<Vec<Value>, BuildError> {
    if !spec.build_metadata.is_empty() {
        return Err(BuildError::Unsupported {
            field: "spec.buildMetadata",
            reason: "the native kustomize engine does not implement buildMetadata",
        });
    }
    let relative = secure_relative(path)?;
    if !root_dir.join(&relative).is_dir() {
        return Err(BuildError::PathNotFound(path.to_owned()));
    }
    let overlay = overlay_fields(spec, &root_dir.join(&relative))?;
    let mut objects = if overlay.is_empty() {
        engine_build(root_dir, &root_dir.join(&relative))?
    } else {
        let workspace = tempfile::Builder::new()
            .prefix("kustomize-build-")
            .tempdir()
            .map_err(BuildError::Workspace)?;
        copy_tree(root_dir, workspace.path()).map_err(BuildError::Workspace)?;
        let dir = workspace.path().join(&relative);
        write_overlay(workspace.path(), &dir, overlay)?;
        engine_build(workspace.path(), &dir)?
    };
    if let Some(common) = &spec.common_metadata {
        for object in &mut objects {
            set_common_metadata(object, &common.labels, &common.annotations);
        }
    }
    Ok(objects)
}

/// Normalises a user path to a relative one, refusing absolute paths and `..` that leave the root.
fn secure_relative(path: &str) -> Result<PathBuf, BuildError> {
    let mut relative = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !relative.pop() {
                    return Err(BuildError::PathEscapes(path.to_owned()));
                }
            }
            Component::Prefix(_) => return Err(BuildError::PathEscapes(path.to_owned())),
        }
    }
    Ok(relative)
}

/// The kustomization fields Flux sets from the spec, in Flux's order; empty when none apply.
fn overlay_fields(spec: &KustomizationSpec, dir: &Path) -> Result<Map<String, Value>, BuildError> {
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
    Ok(fields)
}

/// Copies the regular files and directories of `from` into `to` (symlinks are skipped).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
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
fn write_overlay(root: &Path, dir: &Path, overlay: Map<String, Value>) -> Result<(), BuildError> {
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

fn engine_build(root: &Path, dir: &Path) -> Result<Vec<Value>, BuildError> {
    let options = BuildOptions {
        root: Some(root.to_path_buf()),
        missing_kustomization: MissingKustomization::GenerateLikeFlux,
        file_access: FileAccess::BuildRoot,
    };
    sluice_kustomize::build_with(dir, &options).map_err(|error| kustomize_error(root, &error))
}

/// An engine error with paths shown relative to the build root.
fn kustomize_error(root: &Path, error: &sluice_kustomize::Error) -> BuildError {
    let mut message = error.to_string();
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    for prefix in [canonical.as_path(), root] {
        let prefix = prefix.display().to_string();
        message = message
            .replace(&format!("{prefix}/"), "")
            .replace(&prefix, ".");
    }
    match error {
        sluice_kustomize::Error::Unsupported { feature, .. } if feature.starts_with("remote") => {
            BuildError::RemoteBase(message)
        }
        _ => BuildError::Kustomize(message),
    }
}

fn display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Sets labels and annotations on an object's metadata, overriding existing values, as Flux's
/// `SetCommonMetadata` does after the build.
fn set_common_metadata(
    object: &mut Value,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) {
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    for (field, values) in [("labels", labels), ("annotations", annotations)] {
        if values.is_empty() {
            continue;
        }
        let map = metadata
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if !map.is_object() {
            *map = Value::Object(Map::new());
        }
        if let Some(map) = map.as_object_mut() {
            for (key, value) in values {
                map.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
}

/// `Kind/namespace/name` (or `Kind/name`), as Flux names objects in messages.
pub fn subject(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(namespace) if !namespace.is_empty() => format!("{kind}/{namespace}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

/// Labels and annotations of an object, merged, for per-object opt-out checks.
pub fn metadata_flags(object: &Value) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    for field in ["/metadata/labels", "/metadata/annotations"] {
        if let Some(map) = object.pointer(field).and_then(Value::as_object) {
            for (key, value) in map {
                if let Some(value) = value.as_str() {
                    flags.insert(key.clone(), value.to_owned());
                }
            }
        }
    }
    flags
}

/// Whether the label or annotation `key` equals `value`, ignoring case.
pub fn has_flag(object: &Value, key: &str, value: &str) -> bool {
    metadata_flags(object)
        .get(key)
        .is_some_and(|actual| actual.eq_ignore_ascii_case(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: Value) -> KustomizationSpec {
        let mut base = json!({
            "interval": "1m",
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn names(objects: &[Value]) -> Vec<String> {
        objects.iter().map(subject).collect()
    }

    /// Every file below `dir` with its content, to prove a build leaves the artifact untouched.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in std::fs::read_dir(current).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    files.insert(path.clone(), std::fs::read(path).unwrap());
                }
            }
        }
        files
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      serviceAccountName: web\n      containers:\n        - name: web\n          image: registry:5000/org/web:1.0\n";

    #[test]
    fn plain_directories_build_like_flux_generated_kustomizations() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "apps/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        );
        write(dir.path(), "README.md", "# x");
        write(
            dir.path(),
            "sub/kustomization.yaml",
            "resources: [c.yaml]\nnamePrefix: sub-\n",
        );
        write(
            dir.path(),
            "sub/c.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        );
        let objects = build(dir.path(), "./", &spec(json!({}))).unwrap();
        assert_eq!(
            names(&objects),
            ["ConfigMap/a", "ConfigMap/b", "ConfigMap/sub-c"]
        );
        write(dir.path(), "apps/values.yaml", "replicas: 2\n");
        let error = build(dir.path(), "./", &spec(json!({}))).unwrap_err();
        assert!(error.to_string().contains("apps/values.yaml"), "{error}");
    }

    #[test]
    fn paths_stay_inside_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            build(dir.path(), "../..", &spec(json!({}))).unwrap_err(),
            BuildError::PathEscapes(_)
        ));
        assert!(matches!(
            build(dir.path(), "missing", &spec(json!({}))).unwrap_err(),
            BuildError::PathNotFound(_)
        ));
    }

    #[test]
    fn invalid_kustomization_files_are_named_relative_to_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "app/kustomization.yaml",
            "resources: [unclosed\n",
        );
        let error = build(dir.path(), "app", &spec(json!({}))).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("app/kustomization.yaml"), "{message}");
        assert!(
            !message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        let error = build(dir.path(), "app", &spec(json!({"namePrefix": "p-"}))).unwrap_err();
        assert!(
            error.to_string().contains("app/kustomization.yaml"),
            "{error}"
        );
    }

    #[test]
    fn remote_bases_and_build_metadata_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "kustomization.yaml",
            "resources: [https://github.com/org/repo//base?ref=v1]\n",
        );
        let error = build(dir.path(), "", &spec(json!({}))).unwrap_err();
        assert!(matches!(error, BuildError::RemoteBase(_)), "{error}");
        let error = build(
            dir.path(),
            "",
            &spec(json!({"buildMetadata": ["originAnnotations"]})),
        )
        .unwrap_err();
        assert!(error.to_string().contains("spec.buildMetadata"), "{error}");
        let error = build(
            dir.path(),
            "",
            &spec(json!({"components": ["https://example.com/c"]})),
        )
        .unwrap_err();
        assert!(matches!(error, BuildError::RemoteComponent(_)), "{error}");
    }

    #[test]
    fn spec_fields_are_overlaid_on_the_kustomization_without_touching_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base/deployment.yaml", DEPLOYMENT);
        write(
            dir.path(),
            "base/kustomization.yaml",
            "resources: [sa.yaml, deployment.yaml]\n",
        );
        write(
            dir.path(),
            "base/sa.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
        );
        write(
            dir.path(),
            "app/kustomization.yaml",
            "resources: [../base]\nimages:\n  - name: registry:5000/org/web\n    newTag: '1.5'\n  - name: other\n    newTag: x\n",
        );
        write(
            dir.path(),
            "components/extra/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
        );
        write(
            dir.path(),
            "components/extra/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
        );
        let before = snapshot(dir.path());
        let spec = spec(json!({
            "targetNamespace": "prod",
            "namePrefix": "p-",
            "nameSuffix": "-s",
            "images": [{"name": "registry:5000/org/web", "newTag": "2.0"}],
            "components": ["../components/extra", "../components/missing"],
            "ignoreMissingComponents": true,
            "patches": [
                {"patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n"},
                {
                    "patch": "- op: add\n  path: /metadata/annotations\n  value: {patched: json6902}\n",
                    "target": {"kind": "ServiceAccount", "name": "web"},
                },
            ],
            "commonMetadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        }));
        let objects = build(dir.path(), "app", &spec).unwrap();
        assert_eq!(
            snapshot(dir.path()),
            before,
            "the artifact is never modified"
        );
        assert_eq!(
            names(&objects),
            [
                "ServiceAccount/prod/p-web-s",
                "ConfigMap/prod/p-extra-s",
                "Deployment/prod/p-web-s"
            ]
        );
        let deployment = &objects[2];
        assert_eq!(deployment["spec"]["replicas"], 3);
        assert_eq!(deployment["metadata"]["labels"]["team"], "a");
        assert_eq!(deployment["metadata"]["annotations"]["note"], "x");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "p-web-s");
        assert_eq!(pod["containers"][0]["image"], "registry:5000/org/web:2.0");
        assert_eq!(objects[0]["metadata"]["annotations"]["patched"], "json6902");
        assert!(
            objects[0]["spec"]["template"].is_null(),
            "commonMetadata stays on metadata"
        );
    }

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
