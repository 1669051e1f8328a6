//! Rendering a path of an artifact into Kubernetes objects.
//!
//! [`build`] is the one boundary the native kustomize engine will plug into. Until then it
//! handles plain-manifest directories the way Flux's generated kustomization does, plus the
//! Flux-level transforms that work on objects directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};
use sluice_api::kustomize::KustomizationSpec;

/// File names that make a directory a kustomize root.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kustomization path {0:?} not found in the artifact; check spec.path")]
    PathNotFound(String),
    #[error("kustomization path {0:?} escapes the artifact root; use a relative path inside it")]
    PathEscapes(String),
    #[error(
        "{0} requires the native kustomize engine (not yet wired); use a directory of plain manifests"
    )]
    NeedsEngine(String),
    #[error(
        "{field} is not supported yet by this controller's build; remove it from the Kustomization"
    )]
    Unsupported { field: &'static str },
    #[error("reading {path} failed: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not valid YAML: {reason}; fix the file in the source")]
    InvalidYaml { path: String, reason: String },
    #[error("{path}: {reason}")]
    InvalidObject { path: String, reason: String },
    #[error("{0} is defined more than once in the build; object identities must be unique")]
    Duplicate(String),
}

/// Renders `path` under `root_dir` with the Kustomization's build-time transforms.
pub fn build(
    root_dir: &Path,
    path: &str,
    spec: &KustomizationSpec,
) -> Result<Vec<Value>, BuildError> {
    reject_unsupported(spec)?;
    let dir = secure_join(root_dir, path)?;
    if !dir.is_dir() {
        return Err(BuildError::PathNotFound(path.to_owned()));
    }
    let mut files = Vec::new();
    collect_manifest_files(root_dir, &dir, &mut files)?;
    let mut objects = Vec::new();
    for file in files {
        objects.extend(read_manifests(root_dir, &file)?);
    }
    for object in &mut objects {
        transform(object, spec);
    }
    reject_duplicates(&objects)?;
    Ok(objects)
}

fn reject_unsupported(spec: &KustomizationSpec) -> Result<(), BuildError> {
    if !spec.patches.is_empty() {
        return Err(BuildError::Unsupported {
            field: "spec.patches",
        });
    }
    if !spec.components.is_empty() {
        return Err(BuildError::Unsupported {
            field: "spec.components",
        });
    }
    if !spec.build_metadata.is_empty() {
        return Err(BuildError::Unsupported {
            field: "spec.buildMetadata",
        });
    }
    Ok(())
}

/// Joins a user path to the root, refusing absolute paths and `..` that leave the root.
fn secure_join(root: &Path, path: &str) -> Result<PathBuf, BuildError> {
    let mut depth: usize = 0;
    let mut joined = root.to_path_buf();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => {
                depth += 1;
                joined.push(part);
            }
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| BuildError::PathEscapes(path.to_owned()))?;
                joined.pop();
            }
            Component::Prefix(_) => return Err(BuildError::PathEscapes(path.to_owned())),
        }
    }
    Ok(joined)
}

fn display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn collect_manifest_files(
    root: &Path,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let read_error = |reason: std::io::Error| BuildError::Read {
        path: display(root, dir),
        reason: reason.to_string(),
    };
    for name in KUSTOMIZATION_FILES {
        if dir.join(name).is_file() {
            let location = display(root, &dir.join(name));
            return Err(BuildError::NeedsEngine(format!(
                "{} ({location})",
                "kustomization.yaml"
            )));
        }
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type().map_err(read_error)?;
        if file_type.is_dir() {
            collect_manifest_files(root, &path, files)?;
        } else if file_type.is_file()
            && path
                .extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| matches!(extension, "yaml" | "yml" | "json"))
        {
            files.push(path);
        }
    }
    Ok(())
}

fn read_manifests(root: &Path, file: &Path) -> Result<Vec<Value>, BuildError> {
    let path = display(root, file);
    let text = std::fs::read_to_string(file).map_err(|error| BuildError::Read {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let documents: Vec<Value> = if file
        .extension()
        .is_some_and(|extension| extension == "json")
    {
        vec![
            serde_json::from_str(&text).map_err(|error| BuildError::InvalidYaml {
                path: path.clone(),
                reason: error.to_string(),
            })?,
        ]
    } else {
        serde_saphyr::from_multiple(&text).map_err(|error| BuildError::InvalidYaml {
            path: path.clone(),
            reason: error.to_string(),
        })?
    };
    let mut objects = Vec::new();
    for document in documents {
        if !is_kubernetes_object(&document) {
            continue;
        }
        if document["kind"] == "List" && document["apiVersion"] == "v1" {
            let items = document
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            objects.extend(items.into_iter().filter(is_kubernetes_object));
            continue;
        }
        objects.push(document);
    }
    for object in &objects {
        let named = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|name| !name.is_empty());
        if !named {
            return Err(BuildError::InvalidObject {
                path: path.clone(),
                reason: format!(
                    "a {} has no metadata.name",
                    object["kind"].as_str().unwrap_or_default()
                ),
            });
        }
    }
    Ok(objects)
}

fn is_kubernetes_object(document: &Value) -> bool {
    document
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|value| !value.is_empty())
        && document
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|value| !value.is_empty())
}

/// Kinds that kustomize treats as cluster-scoped.
pub fn is_cluster_scoped_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "IngressClass"
            | "RuntimeClass"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "MutatingAdmissionPolicy"
            | "MutatingAdmissionPolicyBinding"
            | "APIService"
            | "CSIDriver"
            | "CSINode"
            | "VolumeAttachment"
            | "VolumeSnapshotClass"
            | "VolumeSnapshotContent"
            | "CertificateSigningRequest"
            | "FlowSchema"
            | "PriorityLevelConfiguration"
            | "Node"
            | "ComponentStatus"
            | "ClusterIssuer"
    )
}

fn transform(object: &mut Value, spec: &KustomizationSpec) {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    if let Some(namespace) = &spec.target_namespace {
        set_namespace(object, &kind, namespace);
    }
    if spec.name_prefix.is_some() || spec.name_suffix.is_some() {
        rename(
            object,
            &kind,
            spec.name_prefix.as_deref().unwrap_or_default(),
            spec.name_suffix.as_deref().unwrap_or_default(),
        );
    }
    if !spec.images.is_empty() {
        set_images(object, &spec.images);
    }
    if let Some(common) = &spec.common_metadata
        && let Some(metadata) = metadata_mut(object)
    {
        for (field, values) in [
            ("labels", &common.labels),
            ("annotations", &common.annotations),
        ] {
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
}

fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let metadata = object
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    metadata.as_object_mut()
}

fn set_namespace(object: &mut Value, kind: &str, namespace: &str) {
    if is_cluster_scoped_kind(kind) {
        if kind == "ClusterRoleBinding" {
            set_subject_namespaces(object, namespace);
        }
        return;
    }
    if let Some(metadata) = metadata_mut(object) {
        metadata.insert("namespace".to_owned(), Value::String(namespace.to_owned()));
    }
    if kind == "RoleBinding" {
        set_subject_namespaces(object, namespace);
    }
}

/// kustomize moves ServiceAccount subjects of (Cluster)RoleBindings into the target namespace.
fn set_subject_namespaces(object: &mut Value, namespace: &str) {
    if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
        for subject in subjects {
            if subject["kind"] == "ServiceAccount" {
                subject["namespace"] = Value::String(namespace.to_owned());
            }
        }
    }
}

/// Prefixes and suffixes names (except CRDs, APIServices and Namespaces, as kustomize does) and
/// the references to renamed kinds that pod templates, Ingresses and RBAC bindings hold.
fn rename(object: &mut Value, kind: &str, prefix: &str, suffix: &str) {
    let renamed = |name: &str| format!("{prefix}{name}{suffix}");
    if !matches!(
        kind,
        "CustomResourceDefinition" | "APIService" | "Namespace"
    ) && let Some(name) = object.pointer_mut("/metadata/name")
        && let Some(current) = name.as_str()
    {
        *name = Value::String(renamed(current));
    }
    rename_references(object, &renamed);
}

fn rename_references(object: &mut Value, renamed: &dyn Fn(&str) -> String) {
    let rename_at = |value: Option<&mut Value>| {
        if let Some(value) = value
            && let Some(name) = value.as_str()
        {
            *value = Value::String(renamed(name));
        }
    };
    if let Some(pod_spec) = find_pod_spec(object) {
        rename_at(pod_spec.get_mut("serviceAccountName"));
        if let Some(secrets) = pod_spec
            .get_mut("imagePullSecrets")
            .and_then(Value::as_array_mut)
        {
            for secret in secrets {
                rename_at(secret.get_mut("name"));
            }
        }
        if let Some(volumes) = pod_spec.get_mut("volumes").and_then(Value::as_array_mut) {
            for volume in volumes {
                rename_at(volume.pointer_mut("/configMap/name"));
                rename_at(volume.pointer_mut("/secret/secretName"));
                rename_at(volume.pointer_mut("/persistentVolumeClaim/claimName"));
            }
        }
        for list in ["containers", "initContainers"] {
            let Some(containers) = pod_spec.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for container in containers {
                if let Some(sources) = container.get_mut("envFrom").and_then(Value::as_array_mut) {
                    for source in sources {
                        rename_at(source.pointer_mut("/configMapRef/name"));
                        rename_at(source.pointer_mut("/secretRef/name"));
                    }
                }
                if let Some(variables) = container.get_mut("env").and_then(Value::as_array_mut) {
                    for variable in variables {
                        rename_at(variable.pointer_mut("/valueFrom/configMapKeyRef/name"));
                        rename_at(variable.pointer_mut("/valueFrom/secretKeyRef/name"));
                    }
                }
            }
        }
    }
    match object["kind"].as_str() {
        Some("Ingress") => {
            rename_at(object.pointer_mut("/spec/defaultBackend/service/name"));
            if let Some(rules) = object
                .pointer_mut("/spec/rules")
                .and_then(Value::as_array_mut)
            {
                for rule in rules {
                    if let Some(paths) = rule
                        .pointer_mut("/http/paths")
                        .and_then(Value::as_array_mut)
                    {
                        for path in paths {
                            rename_at(path.pointer_mut("/backend/service/name"));
                        }
                    }
                }
            }
        }
        Some("RoleBinding" | "ClusterRoleBinding") => {
            rename_at(object.pointer_mut("/roleRef/name"));
            if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
                for subject in subjects {
                    if subject["kind"] == "ServiceAccount" {
                        rename_at(subject.get_mut("name"));
                    }
                }
            }
        }
        Some("StatefulSet") => rename_at(object.pointer_mut("/spec/serviceName")),
        Some("HorizontalPodAutoscaler") => {
            rename_at(object.pointer_mut("/spec/scaleTargetRef/name"))
        }
        _ => {}
    }
}

fn find_pod_spec(object: &mut Value) -> Option<&mut Value> {
    let pointer = match object["kind"].as_str()? {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => "/spec/template/spec",
        _ => return None,
    };
    object.pointer_mut(pointer)
}

/// Applies `images` overrides to every container image, wherever containers are listed.
fn set_images(value: &mut Value, images: &[sluice_api::kustomize::Image]) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Some(containers) = child.as_array_mut()
                {
                    for container in containers {
                        if let Some(image) = container.get_mut("image")
                            && let Some(current) = image.as_str()
                            && let Some(updated) = override_image(current, images)
                        {
                            *image = Value::String(updated);
                        }
                    }
                } else {
                    set_images(child, images);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| set_images(item, images)),
        _ => {}
    }
}

/// Splits `name[:tag][@digest]`, ignoring a registry port colon.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |index| index + 1);
    match rest[slash..].rfind(':') {
        Some(colon) => (
            &rest[..slash + colon],
            Some(&rest[slash + colon + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

fn override_image(current: &str, images: &[sluice_api::kustomize::Image]) -> Option<String> {
    let (name, tag, digest) = split_image(current);
    let image = images.iter().find(|image| image.name == name)?;
    let new_name = image.new_name.as_deref().unwrap_or(name);
    if let Some(new_digest) = &image.digest {
        return Some(format!("{new_name}@{new_digest}"));
    }
    if let Some(new_tag) = &image.new_tag {
        return Some(format!("{new_name}:{new_tag}"));
    }
    let mut result = new_name.to_owned();
    if let Some(tag) = tag {
        result.push(':');
        result.push_str(tag);
    }
    if let Some(digest) = digest {
        result.push('@');
        result.push_str(digest);
    }
    Some(result)
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

fn reject_duplicates(objects: &[Value]) -> Result<(), BuildError> {
    let mut seen = BTreeSet::new();
    for object in objects {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let key = (group.to_owned(), subject(object));
        if !seen.insert(key) {
            return Err(BuildError::Duplicate(subject(object)));
        }
    }
    Ok(())
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
    use serde_json::json;

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

    #[test]
    fn reads_multi_document_yaml_recursively_and_skips_non_kubernetes_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "apps/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        );
        write(dir.path(), "apps/values.yaml", "replicas: 2\n");
        write(dir.path(), "README.md", "# x");
        write(
            dir.path(),
            "c.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
        );
        let objects = build(dir.path(), "./", &spec(json!({}))).unwrap();
        let names: Vec<_> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn kustomization_file_needs_the_engine_and_paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "k/kustomization.yaml", "resources: []\n");
        let error = build(dir.path(), "k", &spec(json!({}))).unwrap_err();
        assert!(
            error.to_string().contains("native kustomize engine"),
            "{error}"
        );
        let error = build(dir.path(), "./", &spec(json!({}))).unwrap_err();
        assert!(matches!(error, BuildError::NeedsEngine(_)));
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
    fn invalid_yaml_and_duplicates_fail() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "apiVersion: v1\nkind: [unclosed\n");
        assert!(matches!(
            build(dir.path(), "", &spec(json!({}))).unwrap_err(),
            BuildError::InvalidYaml { .. }
        ));
        let dir = tempfile::tempdir().unwrap();
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        write(dir.path(), "a.yaml", cm);
        write(dir.path(), "b.yaml", cm);
        assert!(matches!(
            build(dir.path(), "", &spec(json!({}))).unwrap_err(),
            BuildError::Duplicate(_)
        ));
    }

    #[test]
    fn applies_flux_transforms() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "app.yaml",
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: registry:5000/org/web:1.0
---
apiVersion: v1
kind: Namespace
metadata:
  name: apps
"#,
        );
        let spec = spec(json!({
            "targetNamespace": "prod",
            "namePrefix": "p-",
            "nameSuffix": "-s",
            "images": [{"name": "registry:5000/org/web", "newTag": "2.0"}],
            "commonMetadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        }));
        let objects = build(dir.path(), "", &spec).unwrap();
        let deployment = &objects[0];
        assert_eq!(deployment["metadata"]["name"], "p-web-s");
        assert_eq!(deployment["metadata"]["namespace"], "prod");
        assert_eq!(deployment["metadata"]["labels"]["team"], "a");
        assert_eq!(deployment["metadata"]["annotations"]["note"], "x");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["serviceAccountName"],
            "p-web-s"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry:5000/org/web:2.0"
        );
        let namespace = &objects[1];
        assert_eq!(namespace["metadata"]["name"], "apps");
        assert!(namespace["metadata"].get("namespace").is_none());
    }

    #[test]
    fn unsupported_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(json!({"patches": [{"patch": "x"}]}));
        let error = build(dir.path(), "", &spec).unwrap_err();
        assert!(error.to_string().contains("spec.patches"), "{error}");
    }

    #[test]
    fn image_overrides() {
        let image =
            |name: &str, tag: Option<&str>, digest: Option<&str>| sluice_api::kustomize::Image {
                name: name.to_owned(),
                new_name: None,
                new_tag: tag.map(str::to_owned),
                digest: digest.map(str::to_owned),
            };
        assert_eq!(
            override_image("nginx", &[image("nginx", Some("1.2"), None)]).as_deref(),
            Some("nginx:1.2")
        );
        assert_eq!(
            override_image(
                "nginx:1.0",
                &[image("nginx", Some("1.2"), Some("sha256:ab"))]
            )
            .as_deref(),
            Some("nginx@sha256:ab")
        );
        assert_eq!(
            override_image("redis:1", &[image("nginx", Some("1.2"), None)]),
            None
        );
    }
}
