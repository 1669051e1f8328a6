//! `transformers` and `generators` entries that configure kustomize's built-in plugins
//! (`apiVersion: builtin`), run with this engine's own transformers and generators. Every other
//! plugin (Go, exec, container functions) is refused as unsupported.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fieldspecs::FieldSpec;
use crate::generators::{GeneratedKind, generate};
use crate::kustomization::{Fields, Patch, Replica};
use crate::load::Context;
use crate::patch;
use crate::replacements;
use crate::resmap::ResMap;
use crate::resource::scalar_text;
use crate::transformers::prefix::Affix;
use crate::transformers::{images, labels, namespace, prefix, replicas};

/// One plugin configuration object and the entry it came from (`transformers[0]`).
pub(crate) struct PluginConfig {
    pub field: String,
    pub object: Value,
    /// How a transformer run is recorded when origins are tracked.
    pub origin: Option<crate::metadata::TransformerOrigin>,
}

/// The fields of a generator's arguments (`types.ConfigMapArgs`, `types.SecretArgs`).
const GENERATOR_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "behavior",
    "literals",
    "files",
    "envs",
    "env",
    "options",
];

/// The kind of a built-in plugin config; anything else is refused with the plugin's id.
fn builtin_kind(config: &PluginConfig, ctx: &Context) -> Result<String> {
    let api_version = config.object.get("apiVersion").map(scalar_text);
    let kind = config
        .object
        .get("kind")
        .map(scalar_text)
        .unwrap_or_default();
    match api_version.as_deref() {
        Some("builtin") => Ok(kind),
        other => Err(Error::unsupported(
            format!(
                "`{}`: plugin {}/{kind} (only kustomize's built-in plugins, `apiVersion: builtin`, run)",
                config.field,
                other.unwrap_or_default()
            ),
            ctx.file,
        )),
    }
}

/// Runs a `generators` entry; the generated object is absorbed like a field generator's.
pub(crate) fn run_generator(
    resources: &mut ResMap,
    config: &PluginConfig,
    ctx: &Context,
) -> Result<()> {
    let kind = match builtin_kind(config, ctx)?.as_str() {
        "ConfigMapGenerator" => GeneratedKind::ConfigMap,
        "SecretGenerator" => GeneratedKind::Secret,
        other => return Err(unsupported_builtin(config, other, ctx)),
    };
    let f = Fields { file: ctx.file };
    let mut known = GENERATOR_FIELDS.to_vec();
    if kind == GeneratedKind::Secret {
        known.push("type");
    }
    let value = known_only(&config.object, &known);
    let mut args = f.generator(&value, &config.field, kind == GeneratedKind::Secret)?;
    let (name, namespace) = metadata(&config.object);
    if args.name.is_empty() {
        args.name = name;
    }
    if args.namespace.is_empty() {
        args.namespace = namespace;
    }
    let generated = generate(kind, &args, None, ctx, &config.field)?;
    resources.absorb(generated, ctx.file, &config.field)
}

/// Runs a `transformers` entry.
pub(crate) fn run_transformer(
    resources: &mut ResMap,
    config: &PluginConfig,
    ctx: &Context,
) -> Result<()> {
    let kind = builtin_kind(config, ctx)?;
    match kind.as_str() {
        "PatchTransformer"
        | "PatchStrategicMergeTransformer"
        | "PatchJson6902Transformer"
        | "ReplacementTransformer" => edit_transformer(resources, config, &kind, ctx),
        "NamespaceTransformer" => namespace_transformer(resources, config, ctx),
        _ => field_transformer(resources, config, &kind, ctx),
    }
}

/// The transformers that set fields named by field specs: labels, annotations, name affixes,
/// images and replica counts.
fn field_transformer(
    resources: &mut ResMap,
    config: &PluginConfig,
    kind: &str,
    ctx: &Context,
) -> Result<()> {
    let f = Fields { file: ctx.file };
    let field = config.field.as_str();
    let object = &config.object;
    let empty = Value::Object(Map::new());
    match kind {
        "LabelTransformer" | "AnnotationsTransformer" => {
            let key = if kind == "LabelTransformer" {
                "labels"
            } else {
                "annotations"
            };
            let map = known_map(object, &[key, "fieldSpecs"]);
            let pairs = f.string_map(&map, field, key)?;
            labels::apply(
                resources,
                &pairs,
                &field_specs(&f, &map, field)?,
                ctx,
                field,
            )
        }
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            let map = known_map(object, &["prefix", "suffix", "fieldSpecs"]);
            let specs = field_specs(&f, &map, field)?;
            for (affix, key) in [(Affix::Prefix, "prefix"), (Affix::Suffix, "suffix")] {
                let text = f.string(&map, field, key)?;
                if !text.is_empty() {
                    prefix::apply(resources, affix, &text, &specs, ctx)?;
                }
            }
            Ok(())
        }
        "ImageTagTransformer" => {
            let map = known_map(object, &["imageTag", "fieldSpecs"]);
            let image = map.get("imageTag").filter(|v| !v.is_null());
            let image = f.image(image.unwrap_or(&empty), &format!("{field}.imageTag"))?;
            images::apply(
                resources,
                &image,
                &field_specs(&f, &map, field)?,
                ctx,
                field,
            )
        }
        "ReplicaCountTransformer" => {
            let map = known_map(object, &["replica", "fieldSpecs"]);
            let path = format!("{field}.replica");
            let replica = map.get("replica").filter(|v| !v.is_null());
            let r = f.object(replica.unwrap_or(&empty), &path, &["name", "count"])?;
            let replica = Replica {
                name: f.string(&r, &path, "name")?,
                count: f.int(&r, &path, "count")?,
            };
            let specs = field_specs(&f, &map, field)?;
            replicas::apply(resources, &replica, &specs, ctx, field)
        }
        other => Err(unsupported_builtin(config, other, ctx)),
    }
}

/// The patch and replacement transformers.
fn edit_transformer(
    resources: &mut ResMap,
    config: &PluginConfig,
    kind: &str,
    ctx: &Context,
) -> Result<()> {
    let f = Fields { file: ctx.file };
    let field = config.field.as_str();
    let object = &config.object;
    match kind {
        "PatchTransformer" => {
            let value = known_only(object, &["path", "patch", "target", "options"]);
            patch::apply_patches(resources, &[f.patch(&value, field)?], ctx, &|_| {
                field.to_string()
            })
        }
        "PatchStrategicMergeTransformer" => {
            let map = known_map(object, &["paths", "patches"]);
            let mut entries = f.strings(&map, field, "paths")?;
            let inline = f.string(&map, field, "patches")?;
            if !inline.is_empty() {
                entries.push(inline);
            }
            patch::apply_strategic_merge_files(resources, &entries, ctx, &|_| field.to_string())
        }
        "PatchJson6902Transformer" => {
            let map = known_map(object, &["target", "path", "jsonOp"]);
            let target = map.get("target").filter(|v| !v.is_null());
            let entry = Patch {
                path: f.string(&map, field, "path")?,
                patch: f.string(&map, field, "jsonOp")?,
                target: target
                    .map(|t| f.selector(t, &format!("{field}.target")))
                    .transpose()?,
                ..Patch::default()
            };
            patch::apply_json6902_entries(resources, &[entry], ctx, &|_| field.to_string())
        }
        _ => {
            let map = known_map(object, &["replacements"]);
            let mut entries = Vec::new();
            for (i, item) in f.list(&map, field, "replacements")?.iter().enumerate() {
                entries.push(f.replacement_entry(item, &format!("{field}.replacements[{i}]"))?);
            }
            let loaded = replacements::load(&entries, ctx)?;
            replacements::apply(resources, &loaded, ctx)
        }
    }
}

/// `NamespaceTransformer`: the namespace comes from the config's own `metadata.namespace`.
fn namespace_transformer(
    resources: &mut ResMap,
    config: &PluginConfig,
    ctx: &Context,
) -> Result<()> {
    let f = Fields { file: ctx.file };
    let field = config.field.as_str();
    let map = known_map(
        &config.object,
        &["fieldSpecs", "unsetOnly", "setRoleBindingSubjects"],
    );
    let subjects = match f.string(&map, field, "setRoleBindingSubjects")?.as_str() {
        "" | "defaultOnly" => namespace::Subjects::DefaultOnly,
        "allServiceAccounts" => namespace::Subjects::AllServiceAccounts,
        "none" => namespace::Subjects::None,
        other => {
            return Err(Error::invalid(
                ctx.file,
                format!("{field}.setRoleBindingSubjects"),
                format!("unknown mode `{other}` (defaultOnly, allServiceAccounts or none)"),
            ));
        }
    };
    let options = namespace::Options {
        unset_only: f.bool(&map, field, "unsetOnly")?,
        subjects,
    };
    let (_, namespace) = metadata(&config.object);
    if namespace.is_empty() {
        return Ok(());
    }
    let specs = field_specs(&f, &map, field)?;
    namespace::apply(resources, &namespace, &specs, options, ctx)
}

fn unsupported_builtin(config: &PluginConfig, kind: &str, ctx: &Context) -> Error {
    Error::unsupported(
        format!("`{}`: built-in plugin {kind}", config.field),
        ctx.file,
    )
}

/// The config's `fieldSpecs`.
fn field_specs(f: &Fields, map: &Map<String, Value>, field: &str) -> Result<Vec<FieldSpec>> {
    f.list(map, field, "fieldSpecs")?
        .iter()
        .enumerate()
        .map(|(i, v)| f.field_spec(v, &format!("{field}.fieldSpecs[{i}]")))
        .collect()
}

/// The config's `metadata.name` and `metadata.namespace`.
fn metadata(object: &Value) -> (String, String) {
    let text = |key: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_null())
            .map(scalar_text)
            .unwrap_or_default()
    };
    (text("name"), text("namespace"))
}

/// The config without the fields the plugin does not read (kustomize ignores them), with
/// field names matched like Go's JSON decoding.
fn known_only(object: &Value, known: &[&str]) -> Value {
    Value::Object(known_map(object, known))
}

fn known_map(object: &Value, known: &[&str]) -> Map<String, Value> {
    let Value::Object(map) = object else {
        return Map::new();
    };
    let mut kept = Map::new();
    for (key, value) in map {
        if let Some(name) = known.iter().find(|n| n.eq_ignore_ascii_case(key))
            && (*name == key.as_str() || !map.contains_key(*name))
        {
            kept.insert(name.to_string(), value.clone());
        }
    }
    kept
}
