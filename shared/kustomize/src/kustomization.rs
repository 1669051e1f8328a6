//! The kustomization file: its fields, read strictly (unknown fields and wrong types are errors
//! naming the field), and the fields this engine refuses as unsupported.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fieldspecs::FieldSpec;
use crate::resource::Gvk;

/// A parsed `kustomization.yaml` (or `Component`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Kustomization {
    pub file: PathBuf,
    pub is_component: bool,
    pub name_prefix: String,
    pub name_suffix: String,
    pub namespace: String,
    pub common_labels: BTreeMap<String, String>,
    pub labels: Vec<Label>,
    pub common_annotations: BTreeMap<String, String>,
    pub patches_strategic_merge: Vec<String>,
    pub patches_json6902: Vec<Patch>,
    pub patches: Vec<Patch>,
    pub images: Vec<Image>,
    pub replacements: Vec<ReplacementEntry>,
    pub replicas: Vec<Replica>,
    pub sort_options: Option<SortOptions>,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    pub vars: Vec<Var>,
    pub configurations: Vec<String>,
    /// `buildMetadata` options; only the built kustomization's count, as in kustomize.
    pub build_metadata: Vec<String>,
    /// `transformers` and `generators` entries: plugin config files, directories or inline YAML.
    pub transformers: Vec<String>,
    pub generators: Vec<String>,
}

/// A legacy `vars` entry: `$(name)` in known fields becomes a field of the named object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Var {
    pub name: String,
    pub gvk: Gvk,
    pub object_name: String,
    pub namespace: String,
    pub field_path: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Label {
    pub pairs: BTreeMap<String, String>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub include_volume_claim_templates: bool,
    pub fields: Vec<FieldSpec>,
}

/// A resource selector: regular expressions on id parts plus label and annotation selectors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Patch {
    pub path: String,
    pub patch: String,
    pub target: Option<Selector>,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Image {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub tag_suffix: String,
    pub digest: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Replica {
    pub name: String,
    pub count: i64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SortOptions {
    pub order: String,
    pub legacy: Option<(Vec<String>, Vec<String>)>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct GeneratorOptions {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct GeneratorArgs {
    pub name: String,
    pub namespace: String,
    pub behavior: String,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub envs: Vec<String>,
    pub options: Option<GeneratorOptions>,
    /// The Secret type (secrets only).
    pub secret_type: String,
}

/// A replacement given inline, or the path of a file holding one or more.
#[derive(Clone, Debug)]
pub(crate) enum ReplacementEntry {
    Inline(Box<Replacement>),
    Path(String),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Replacement {
    pub source: Option<ReplacementSource>,
    pub source_value: Option<String>,
    pub targets: Vec<ReplacementTarget>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ReplacementSource {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
    pub field_path: String,
    pub options: Option<FieldOptions>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ReplacementTarget {
    pub select: Option<Selector>,
    pub reject: Vec<Selector>,
    pub field_paths: Vec<String>,
    pub options: Option<FieldOptions>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct FieldOptions {
    pub delimiter: String,
    pub index: i64,
    pub create: bool,
}

/// Top-level fields kustomize knows but this engine does not implement.
const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    ("openapi", "`openapi` (custom schemas)"),
    ("crds", "`crds`"),
    ("validators", "`validators` (plugins)"),
    ("helmGlobals", "`helmGlobals` (Helm inflation)"),
    ("helmCharts", "`helmCharts` (Helm inflation)"),
    (
        "helmChartInflationGenerator",
        "`helmChartInflationGenerator` (Helm inflation)",
    ),
];

/// Reads typed values from a parsed YAML tree, naming the field on errors.
pub(crate) struct Fields<'a> {
    pub file: &'a Path,
}

impl Fields<'_> {
    pub fn error(&self, field: &str, message: impl Into<String>) -> Error {
        Error::invalid(self.file, field, message)
    }

    /// The mapping at `field`, checking that it has only `known` keys. Like Go's JSON decoding,
    /// a key matches a known name case-insensitively (an exact match wins).
    pub fn object<'v>(
        &self,
        value: &'v Value,
        field: &str,
        known: &[&str],
    ) -> Result<Cow<'v, Map<String, Value>>> {
        let Value::Object(map) = value else {
            return Err(self.error(
                field,
                format!("expected a mapping, found {}", describe(value)),
            ));
        };
        if map.keys().all(|k| known.contains(&k.as_str())) {
            return Ok(Cow::Borrowed(map));
        }
        let mut canonical = Map::new();
        for (key, item) in map {
            let name = match known.iter().find(|n| n.eq_ignore_ascii_case(key)) {
                Some(name) if *name == key.as_str() || !map.contains_key(*name) => *name,
                Some(_) => continue,
                None => return Err(self.error(&join(field, key), "unknown field")),
            };
            canonical.insert(name.to_string(), item.clone());
        }
        Ok(Cow::Owned(canonical))
    }

    pub fn string(&self, map: &Map<String, Value>, field: &str, key: &str) -> Result<String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.error(
                &join(field, key),
                format!("expected a string, found {}", describe(other)),
            )),
        }
    }

    pub fn bool(&self, map: &Map<String, Value>, field: &str, key: &str) -> Result<bool> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(
                &join(field, key),
                format!("expected a boolean, found {}", describe(other)),
            )),
        }
    }

    pub fn int(&self, map: &Map<String, Value>, field: &str, key: &str) -> Result<i64> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            Some(other) => Err(self.error(
                &join(field, key),
                format!("expected an integer, found {}", describe(other)),
            )),
        }
    }

    pub fn list<'v>(
        &self,
        map: &'v Map<String, Value>,
        field: &str,
        key: &str,
    ) -> Result<&'v [Value]> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.error(
                &join(field, key),
                format!("expected a list, found {}", describe(other)),
            )),
        }
    }

    pub fn strings(&self, map: &Map<String, Value>, field: &str, key: &str) -> Result<Vec<String>> {
        let path = join(field, key);
        self.list(map, field, key)?
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Null => Ok(String::new()),
                Value::String(s) => Ok(s.clone()),
                other => Err(self.error(
                    &format!("{path}[{i}]"),
                    format!("expected a string, found {}", describe(other)),
                )),
            })
            .collect()
    }

    pub fn string_map(
        &self,
        map: &Map<String, Value>,
        field: &str,
        key: &str,
    ) -> Result<BTreeMap<String, String>> {
        let path = join(field, key);
        match map.get(key) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(k, v)| match v {
                    Value::Null => Ok((k.clone(), String::new())),
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(self.error(
                        &join(&path, k),
                        format!("expected a string, found {}", describe(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.error(
                &path,
                format!("expected a mapping, found {}", describe(other)),
            )),
        }
    }

    /// Each element of a list of mappings, with its field path.
    fn each<'v>(&self, map: &'v Map<String, Value>, key: &str) -> Result<Vec<(String, &'v Value)>> {
        Ok(self
            .list(map, "", key)?
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{key}[{i}]"), v))
            .collect())
    }

    pub fn selector(&self, value: &Value, field: &str) -> Result<Selector> {
        let known = [
            "group",
            "version",
            "kind",
            "name",
            "namespace",
            "labelSelector",
            "annotationSelector",
        ];
        let map = &*self.object(value, field, &known)?;
        Ok(Selector {
            gvk: Gvk {
                group: self.string(map, field, "group")?,
                version: self.string(map, field, "version")?,
                kind: self.string(map, field, "kind")?,
            },
            name: self.string(map, field, "name")?,
            namespace: self.string(map, field, "namespace")?,
            label_selector: self.string(map, field, "labelSelector")?,
            annotation_selector: self.string(map, field, "annotationSelector")?,
        })
    }

    fn optional<'v>(&self, map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        map.get(key).filter(|v| !v.is_null())
    }

    pub fn field_spec(&self, value: &Value, field: &str) -> Result<FieldSpec> {
        let map = &*self.object(
            value,
            field,
            &["group", "version", "kind", "path", "create"],
        )?;
        Ok(FieldSpec {
            gvk: Gvk {
                group: self.string(map, field, "group")?,
                version: self.string(map, field, "version")?,
                kind: self.string(map, field, "kind")?,
            },
            path: self.string(map, field, "path")?,
            create: self.bool(map, field, "create")?,
        })
    }

    fn label(&self, value: &Value, field: &str) -> Result<Label> {
        let known = [
            "pairs",
            "includeSelectors",
            "includeTemplates",
            "includeVolumeClaimTemplates",
            "fields",
        ];
        let map = &*self.object(value, field, &known)?;
        let fields_path = join(field, "fields");
        Ok(Label {
            pairs: self.string_map(map, field, "pairs")?,
            include_selectors: self.bool(map, field, "includeSelectors")?,
            include_templates: self.bool(map, field, "includeTemplates")?,
            include_volume_claim_templates: self.bool(map, field, "includeVolumeClaimTemplates")?,
            fields: self
                .list(map, field, "fields")?
                .iter()
                .enumerate()
                .map(|(i, v)| self.field_spec(v, &format!("{fields_path}[{i}]")))
                .collect::<Result<_>>()?,
        })
    }

    pub(crate) fn patch(&self, value: &Value, field: &str) -> Result<Patch> {
        let map = &*self.object(value, field, &["path", "patch", "target", "options"])?;
        let target = self
            .optional(map, "target")
            .map(|t| self.selector(t, &join(field, "target")))
            .transpose()?;
        let (allow_name_change, allow_kind_change) = match self.optional(map, "options") {
            Some(options) => {
                let path = join(field, "options");
                let options =
                    &*self.object(options, &path, &["allowNameChange", "allowKindChange"])?;
                (
                    self.bool(options, &path, "allowNameChange")?,
                    self.bool(options, &path, "allowKindChange")?,
                )
            }
            None => (false, false),
        };
        Ok(Patch {
            path: self.string(map, field, "path")?,
            patch: self.string(map, field, "patch")?,
            target,
            allow_name_change,
            allow_kind_change,
        })
    }

    pub(crate) fn image(&self, value: &Value, field: &str) -> Result<Image> {
        let map = &*self.object(
            value,
            field,
            &["name", "newName", "newTag", "tagSuffix", "digest"],
        )?;
        Ok(Image {
            name: self.string(map, field, "name")?,
            new_name: self.string(map, field, "newName")?,
            new_tag: self.string(map, field, "newTag")?,
            tag_suffix: self.string(map, field, "tagSuffix")?,
            digest: self.string(map, field, "digest")?,
        })
    }

    fn generator_options(&self, value: &Value, field: &str) -> Result<GeneratorOptions> {
        let map = &*self.object(
            value,
            field,
            &[
                "labels",
                "annotations",
                "disableNameSuffixHash",
                "immutable",
            ],
        )?;
        Ok(GeneratorOptions {
            labels: self.string_map(map, field, "labels")?,
            annotations: self.string_map(map, field, "annotations")?,
            disable_name_suffix_hash: self.bool(map, field, "disableNameSuffixHash")?,
            immutable: self.bool(map, field, "immutable")?,
        })
    }

    pub(crate) fn generator(
        &self,
        value: &Value,
        field: &str,
        is_secret: bool,
    ) -> Result<GeneratorArgs> {
        let mut known = vec![
            "name",
            "namespace",
            "behavior",
            "literals",
            "files",
            "envs",
            "env",
            "options",
        ];
        if is_secret {
            known.push("type");
        }
        let map = &*self.object(value, field, &known)?;
        let mut envs = self.strings(map, field, "envs")?;
        let env = self.string(map, field, "env")?;
        if !env.is_empty() {
            envs.push(env);
        }
        Ok(GeneratorArgs {
            name: self.string(map, field, "name")?,
            namespace: self.string(map, field, "namespace")?,
            behavior: self.string(map, field, "behavior")?,
            literals: self.strings(map, field, "literals")?,
            files: self.strings(map, field, "files")?,
            envs,
            options: self
                .optional(map, "options")
                .map(|o| self.generator_options(o, &join(field, "options")))
                .transpose()?,
            secret_type: if is_secret {
                self.string(map, field, "type")?
            } else {
                String::new()
            },
        })
    }

    fn field_options(&self, value: &Value, field: &str) -> Result<FieldOptions> {
        let map = &*self.object(value, field, &["delimiter", "index", "encoding", "create"])?;
        // kustomize (v5.8) reads `encoding` but does nothing with it.
        self.string(map, field, "encoding")?;
        Ok(FieldOptions {
            delimiter: self.string(map, field, "delimiter")?,
            index: self.int(map, field, "index")?,
            create: self.bool(map, field, "create")?,
        })
    }

    fn var(&self, value: &Value, field: &str) -> Result<Var> {
        let map = &*self.object(value, field, &["name", "objref", "fieldref"])?;
        let object_field = join(field, "objref");
        let known = [
            "apiVersion",
            "group",
            "version",
            "kind",
            "name",
            "namespace",
        ];
        let empty = Value::Object(Map::new());
        let object = &*self.object(
            self.optional(map, "objref").unwrap_or(&empty),
            &object_field,
            &known,
        )?;
        let mut gvk = Gvk {
            group: self.string(object, &object_field, "group")?,
            version: self.string(object, &object_field, "version")?,
            kind: self.string(object, &object_field, "kind")?,
        };
        let api_version = self.string(object, &object_field, "apiVersion")?;
        match api_version.split_once('/') {
            Some((group, version)) if !version.contains('/') => {
                gvk.group = group.to_string();
                gvk.version = version.to_string();
            }
            None if !api_version.is_empty() => gvk.version = api_version,
            _ => {}
        }
        let field_ref = join(field, "fieldref");
        let field_path = match self.optional(map, "fieldref") {
            Some(reference) => {
                let reference = &*self.object(reference, &field_ref, &["fieldPath"])?;
                self.string(reference, &field_ref, "fieldPath")?
            }
            None => String::new(),
        };
        Ok(Var {
            name: self.string(map, field, "name")?,
            gvk,
            object_name: self.string(object, &object_field, "name")?,
            namespace: self.string(object, &object_field, "namespace")?,
            field_path: if field_path.is_empty() {
                "metadata.name".to_string()
            } else {
                field_path
            },
        })
    }

    /// A `replacements` entry: inline, or the `path` of a file holding replacements.
    pub fn replacement_entry(&self, value: &Value, field: &str) -> Result<ReplacementEntry> {
        let known = ["source", "sourceValue", "targets", "path"];
        let r = &*self.object(value, field, &known)?;
        let file_path = self.string(r, field, "path")?;
        Ok(if file_path.is_empty() {
            ReplacementEntry::Inline(Box::new(self.replacement(r, field)?))
        } else {
            ReplacementEntry::Path(file_path)
        })
    }

    /// One replacement (from a kustomization or a replacements file).
    pub fn replacement(&self, map: &Map<String, Value>, field: &str) -> Result<Replacement> {
        let source = match self.optional(map, "source") {
            Some(source) => {
                let path = join(field, "source");
                let known = [
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                    "fieldPath",
                    "options",
                ];
                let s = &*self.object(source, &path, &known)?;
                Some(ReplacementSource {
                    gvk: Gvk {
                        group: self.string(s, &path, "group")?,
                        version: self.string(s, &path, "version")?,
                        kind: self.string(s, &path, "kind")?,
                    },
                    name: self.string(s, &path, "name")?,
                    namespace: self.string(s, &path, "namespace")?,
                    field_path: self.string(s, &path, "fieldPath")?,
                    options: self
                        .optional(s, "options")
                        .map(|o| self.field_options(o, &join(&path, "options")))
                        .transpose()?,
                })
            }
            None => None,
        };
        let source_value = match map.get("sourceValue") {
            None | Some(Value::Null) => None,
            Some(_) => Some(self.string(map, field, "sourceValue")?),
        };
        let targets_path = join(field, "targets");
        let mut targets = Vec::new();
        for (i, target) in self.list(map, field, "targets")?.iter().enumerate() {
            let path = format!("{targets_path}[{i}]");
            let t = &*self.object(
                target,
                &path,
                &["select", "reject", "fieldPaths", "options"],
            )?;
            let reject_path = join(&path, "reject");
            targets.push(ReplacementTarget {
                select: self
                    .optional(t, "select")
                    .map(|s| self.selector(s, &join(&path, "select")))
                    .transpose()?,
                reject: self
                    .list(t, &path, "reject")?
                    .iter()
                    .enumerate()
                    .map(|(j, r)| self.selector(r, &format!("{reject_path}[{j}]")))
                    .collect::<Result<_>>()?,
                field_paths: self.strings(t, &path, "fieldPaths")?,
                options: self
                    .optional(t, "options")
                    .map(|o| self.field_options(o, &join(&path, "options")))
                    .transpose()?,
            });
        }
        Ok(Replacement {
            source,
            source_value,
            targets,
        })
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "buildMetadata",
    "kind",
    "metadata",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "sortOptions",
    "resources",
    "components",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "vars",
    "configurations",
    "transformers",
    "generators",
];

impl Kustomization {
    /// Reads a kustomization from its parsed YAML.
    pub fn from_value(value: &Value, file: &Path) -> Result<Kustomization> {
        let f = Fields { file };
        if value.is_null() {
            return Err(f.error("(document)", "the kustomization is empty"));
        }
        if !value.is_object() {
            return Err(f.error(
                "(document)",
                format!("expected a mapping, found {}", describe(value)),
            ));
        }
        let all_known: Vec<&str> = KNOWN_FIELDS
            .iter()
            .chain(UNSUPPORTED_FIELDS.iter().map(|(f, _)| f))
            .copied()
            .collect();
        let map = &*f.object(value, "", &all_known)?;
        for (field, feature) in UNSUPPORTED_FIELDS {
            if map.get(*field).is_some_and(|v| !is_empty(v)) {
                return Err(Error::unsupported(*feature, file));
            }
        }
        let kind = f.string(map, "", "kind")?;
        let api_version = f.string(map, "", "apiVersion")?;
        let is_component = kind == "Component";
        if !matches!(kind.as_str(), "" | "Kustomization" | "Component") {
            return Err(f.error("kind", "kind should be Kustomization or Component"));
        }
        let required = if is_component {
            "kustomize.config.k8s.io/v1alpha1"
        } else {
            "kustomize.config.k8s.io/v1beta1"
        };
        if !api_version.is_empty() && api_version != required {
            let kind = if kind.is_empty() {
                "Kustomization"
            } else {
                &kind
            };
            return Err(f.error(
                "apiVersion",
                format!("apiVersion for {kind} should be {required}"),
            ));
        }
        if let Some(metadata) = f.optional(map, "metadata") {
            let meta = &*f.object(
                metadata,
                "metadata",
                &["name", "namespace", "labels", "annotations"],
            )?;
            f.string(meta, "metadata", "name")?;
            f.string(meta, "metadata", "namespace")?;
            f.string_map(meta, "metadata", "labels")?;
            f.string_map(meta, "metadata", "annotations")?;
        }
        if map
            .keys()
            .all(|k| matches!(k.as_str(), "kind" | "apiVersion"))
        {
            return Err(f.error("(document)", "the kustomization is empty"));
        }

        let mut k = Kustomization {
            file: file.to_path_buf(),
            is_component,
            ..Kustomization::default()
        };
        k.name_prefix = f.string(map, "", "namePrefix")?;
        k.name_suffix = f.string(map, "", "nameSuffix")?;
        k.namespace = f.string(map, "", "namespace")?;
        k.common_labels = f.string_map(map, "", "commonLabels")?;
        k.common_annotations = f.string_map(map, "", "commonAnnotations")?;
        k.resources = f.strings(map, "", "resources")?;
        k.resources.extend(f.strings(map, "", "bases")?);
        k.components = f.strings(map, "", "components")?;
        k.patches_strategic_merge = f.strings(map, "", "patchesStrategicMerge")?;
        for (path, v) in f.each(map, "labels")? {
            k.labels.push(f.label(v, &path)?);
        }
        for (path, v) in f.each(map, "patchesJson6902")? {
            k.patches_json6902.push(f.patch(v, &path)?);
        }
        for (path, v) in f.each(map, "patches")? {
            k.patches.push(f.patch(v, &path)?);
        }
        for key in ["images", "imageTags"] {
            for (path, v) in f.each(map, key)? {
                k.images.push(f.image(v, &path)?);
            }
        }
        for (path, v) in f.each(map, "replicas")? {
            let r = &*f.object(v, &path, &["name", "count"])?;
            k.replicas.push(Replica {
                name: f.string(r, &path, "name")?,
                count: f.int(r, &path, "count")?,
            });
        }
        for (path, v) in f.each(map, "replacements")? {
            k.replacements.push(f.replacement_entry(v, &path)?);
        }
        k.transformers = f.strings(map, "", "transformers")?;
        k.generators = f.strings(map, "", "generators")?;
        for (path, v) in f.each(map, "configMapGenerator")? {
            k.config_map_generator.push(f.generator(v, &path, false)?);
        }
        for (path, v) in f.each(map, "secretGenerator")? {
            k.secret_generator.push(f.generator(v, &path, true)?);
        }
        k.configurations = f.strings(map, "", "configurations")?;
        k.build_metadata = f.strings(map, "", "buildMetadata")?;
        for (path, v) in f.each(map, "vars")? {
            k.vars.push(f.var(v, &path)?);
        }
        if let Some(options) = f.optional(map, "generatorOptions") {
            k.generator_options = Some(f.generator_options(options, "generatorOptions")?);
        }
        if let Some(options) = f.optional(map, "sortOptions") {
            let s = &*f.object(options, "sortOptions", &["order", "legacySortOptions"])?;
            let legacy = match f.optional(s, "legacySortOptions") {
                Some(legacy) => {
                    let path = "sortOptions.legacySortOptions";
                    let l = &*f.object(legacy, path, &["orderFirst", "orderLast"])?;
                    Some((
                        f.strings(l, path, "orderFirst")?,
                        f.strings(l, path, "orderLast")?,
                    ))
                }
                None => None,
            };
            k.sort_options = Some(SortOptions {
                order: f.string(s, "sortOptions", "order")?,
                legacy,
            });
        }
        Ok(k)
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_single;

    fn read(text: &str) -> Result<Kustomization> {
        Kustomization::from_value(
            &parse_single(text).unwrap(),
            Path::new("kustomization.yaml"),
        )
    }

    #[test]
    fn reads_fields() {
        let k =
            read("namePrefix: p-\nimages:\n- name: nginx\n  newTag: \"1.0\"\nbases: [../base]\n")
                .unwrap();
        assert_eq!(k.name_prefix, "p-");
        assert_eq!(k.images[0].new_tag, "1.0");
        assert_eq!(k.resources, ["../base"]);
    }

    #[test]
    fn field_names_match_case_insensitively_and_an_exact_match_wins() {
        let k = read("NamePrefix: p-\nvars:\n- name: V\n  objref: {kind: Service, name: s}\n  fieldref:\n    fieldpath: spec.clusterIP\n").unwrap();
        assert_eq!(k.name_prefix, "p-");
        assert_eq!(k.vars[0].field_path, "spec.clusterIP");
        let k = read("Nameprefix: b-\nnamePrefix: a-\n").unwrap();
        assert_eq!(k.name_prefix, "a-");
        let k = read("Transformers:\n- t.yaml\n").unwrap();
        assert_eq!(k.transformers, ["t.yaml"]);
    }

    #[test]
    fn errors_name_the_field() {
        let err = read("images:\n- name: nginx\n  newTag: 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("images[0].newTag"), "{err}");
        let err = read("namePrefx: p-\n").unwrap_err().to_string();
        assert!(err.contains("namePrefx: unknown field"), "{err}");
        let err = read("crds:\n- crd.json\n").unwrap_err().to_string();
        assert!(err.starts_with("unsupported: `crds`"), "{err}");
    }
}
