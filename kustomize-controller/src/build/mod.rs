//! Rendering a path of an artifact into Kubernetes objects with the native kustomize engine.
//!
//! [`build`] overlays the Kustomization's build fields onto the kustomization file the way Flux
//! does (in a per-build copy, so the artifact cache is never modified), builds it, and then sets
//! `commonMetadata` on every object, as Flux does after the build.

mod overlay;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sluice_api::duration::parse_duration;
use sluice_api::kustomize::KustomizationSpec;
use sluice_kustomize::{BuildLimits, BuildOptions, BuildOrder, FileAccess, MissingKustomization};

use crate::objects::metadata_map_mut;
use overlay::{copy_tree, overlay_fields, write_overlay};

/// Rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kustomization path {0:?} not found in the artifact; check spec.path")]
    PathNotFound(String),
    #[error("kustomization path {0:?} escapes the artifact root; use a relative path inside it")]
    PathEscapes(String),
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
    let relative = secure_relative(path)?;
    if !root_dir.join(&relative).is_dir() {
        return Err(BuildError::PathNotFound(path.to_owned()));
    }
    let overlay = overlay_fields(spec, &root_dir.join(&relative))?;
    let mut objects = if overlay.is_empty() {
        engine_build(root_dir, &root_dir.join(&relative), build_timeout(spec))?
    } else {
        let workspace = tempfile::Builder::new()
            .prefix("kustomize-build-")
            .tempdir()
            .map_err(BuildError::Workspace)?;
        copy_tree(root_dir, workspace.path()).map_err(BuildError::Workspace)?;
        let dir = workspace.path().join(&relative);
        write_overlay(workspace.path(), &dir, overlay)?;
        engine_build(workspace.path(), &dir, build_timeout(spec))?
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

/// The engine's time limit: `spec.timeout`, else the interval, at least 30 seconds.
fn build_timeout(spec: &KustomizationSpec) -> Duration {
    let timeout = spec.timeout.as_deref().unwrap_or(&spec.interval);
    parse_duration(timeout)
        .unwrap_or(Duration::from_secs(300))
        .max(Duration::from_secs(30))
}

fn engine_build(root: &Path, dir: &Path, timeout: Duration) -> Result<Vec<Value>, BuildError> {
    let options = BuildOptions {
        root: Some(root.to_path_buf()),
        missing_kustomization: MissingKustomization::GenerateLikeFlux,
        file_access: FileAccess::BuildRoot,
        limits: BuildLimits {
            timeout: Some(timeout),
            ..BuildLimits::default()
        },
        order: BuildOrder::AsListed,
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
    for (field, values) in [("labels", labels), ("annotations", annotations)] {
        if values.is_empty() {
            continue;
        }
        if let Some(map) = metadata_map_mut(object, field) {
            for (key, value) in values {
                map.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::objects::subject;

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
    fn remote_bases_are_refused() {
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
            &spec(json!({"components": ["https://example.com/c"]})),
        )
        .unwrap_err();
        assert!(matches!(error, BuildError::RemoteComponent(_)), "{error}");
    }

    #[test]
    fn build_metadata_origin_annotations_name_each_object_s_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "apps/sa.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
        );
        let objects = build(
            dir.path(),
            "apps",
            &spec(json!({"buildMetadata": ["originAnnotations"]})),
        )
        .unwrap();
        assert_eq!(
            objects[0]["metadata"]["annotations"]["config.kubernetes.io/origin"],
            "path: sa.yaml\n"
        );
    }

    #[test]
    fn build_metadata_transformer_annotations_name_each_transformer_of_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "apps/sa.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
        );
        let objects = build(
            dir.path(),
            "apps",
            &spec(json!({"buildMetadata": ["transformerAnnotations"], "namePrefix": "p-"})),
        )
        .unwrap();
        let annotations = &objects[0]["metadata"]["annotations"];
        assert_eq!(
            annotations["alpha.config.kubernetes.io/transformations"],
            "- configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PrefixTransformer\n"
        );
        assert!(annotations.get("config.kubernetes.io/origin").is_none());
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
        // Flux's build order: resources as listed, then what the components add.
        assert_eq!(
            names(&objects),
            [
                "ServiceAccount/prod/p-web-s",
                "Deployment/prod/p-web-s",
                "ConfigMap/prod/p-extra-s"
            ]
        );
        let deployment = &objects[1];
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
}
