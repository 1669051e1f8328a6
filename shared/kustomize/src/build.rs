//! The build: accumulate a kustomization's resources (files, nested kustomizations), run its
//! generators, components and transformers in kustomize's order, then hash generated names, fix
//! name references, drop local-only objects and sort.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::field_transformers::{Trace, transform};
use crate::fieldspecs::{TransformerConfig, builtin};
use crate::generators::{GeneratedKind, generate};
use crate::kustomization::Kustomization;
use crate::load::{Context, Loader, flux_resources, objects_from_text};
use crate::metadata::{
    BuildMetadata, TransformerOrigin, file_origin, generator_origin, record_transformation,
    relative, set_origin,
};
use crate::plugins::{self, PluginConfig};
use crate::resmap::ResMap;
use crate::resource::Resource;
use crate::{
    BuildOptions, BuildOrder, FileAccess, MissingKustomization, hash, namereference, sort, vars,
    yaml,
};

struct Builder<'a> {
    loader: &'a Loader,
    options: &'a BuildOptions,
    /// The built directory, and whether its objects get origin annotations.
    top: PathBuf,
    metadata: BuildMetadata,
    /// Directories being built, to refuse cycles.
    stack: Vec<PathBuf>,
}

/// Builds the kustomization in `dir` into its objects, in output order.
pub(crate) fn build(dir: &Path, options: &BuildOptions) -> Result<Vec<Value>> {
    let loader = Loader::with_limits(options.root.as_deref().unwrap_or(dir), &options.limits)?;
    let start = loader.resolve(dir, ".", loader.root(), dir, "(build directory)")?;
    let kustomization = match loader.kustomization_file(&start)? {
        Some(file) => read_kustomization(&file)?,
        None => match options.missing_kustomization {
            MissingKustomization::Error => return Err(Error::MissingKustomization { dir: start }),
            MissingKustomization::GenerateLikeFlux => Kustomization {
                file: start.join("kustomization.yaml"),
                resources: flux_resources(&start)?,
                ..Kustomization::default()
            },
        },
    };
    if kustomization.is_component {
        return Err(Error::invalid(
            &kustomization.file,
            "kind",
            "a Component cannot be built on its own",
        ));
    }
    let metadata = BuildMetadata::of(&kustomization);
    let mut builder = Builder {
        loader: &loader,
        options,
        top: start.clone(),
        metadata,
        stack: vec![start.clone()],
    };
    let mut resources = builder.accumulate(&kustomization, &start, ResMap::default())?;
    finish(&mut resources, &kustomization, options.order, metadata)?;
    Ok(resources.resources.into_iter().map(|r| r.object).collect())
}

fn read_kustomization(file: &Path) -> Result<Kustomization> {
    let bytes = std::fs::read(file).map_err(|source| Error::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let text = crate::load::text(file, bytes)?;
    let value = yaml::parse_documents_as(&text, yaml::Dialect::V2)
        .map_err(|source| Error::Yaml {
            file: file.to_path_buf(),
            source,
        })?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    Kustomization::from_value(&value, file)
}

/// The top-level steps after accumulation.
fn finish(
    resources: &mut ResMap,
    kustomization: &Kustomization,
    order: BuildOrder,
    metadata: BuildMetadata,
) -> Result<()> {
    for resource in &mut resources.resources {
        if !resource.needs_hash_suffix {
            continue;
        }
        let Some(suffix) = hash::content_hash(&resource.object) else {
            return Err(Error::unsupported(
                format!("a name hash for kind {}", resource.kind()),
                resource.source.clone(),
            ));
        };
        resource.store_previous_id();
        let name = format!("{}-{suffix}", resource.name());
        resource.set_name(&name);
    }
    namereference::fix_references(resources, &kustomization.file)?;
    vars::resolve(resources, &kustomization.file)?;
    resources.resources.retain(|r| {
        r.metadata_map("annotations")
            .get("config.kubernetes.io/local-config")
            .is_none_or(|v| v == "false")
    });
    if order == BuildOrder::Legacy || kustomization.sort_options.is_some() {
        sort::sort(
            &mut resources.resources,
            kustomization.sort_options.as_ref(),
            &kustomization.file,
        )?;
    }
    metadata.finish(&mut resources.resources);
    for resource in &mut resources.resources {
        rewrite_annotations(&mut resource.object);
    }
    Ok(())
}

/// kustomize rewrites annotations when it strips its build annotations: an empty map goes away
/// and every value becomes a string (its scalar text; `null` for null, empty for collections).
fn rewrite_annotations(object: &mut Value) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if metadata.get("annotations").is_some_and(Value::is_null) {
        metadata.remove("annotations");
        return;
    }
    let Some(Value::Object(annotations)) = metadata.get_mut("annotations") else {
        return;
    };
    if annotations.is_empty() {
        metadata.remove("annotations");
        return;
    }
    for value in annotations.values_mut() {
        let text = match &*value {
            Value::Null => "null".to_string(),
            other => crate::resource::scalar_text(other),
        };
        *value = Value::String(text);
    }
}

impl Builder<'_> {
    /// Adds a kustomization's resources to `resources` and applies its generators, components
    /// and transformers to the result.
    fn accumulate(
        &mut self,
        kustomization: &Kustomization,
        dir: &Path,
        mut resources: ResMap,
    ) -> Result<ResMap> {
        let file = kustomization.file.as_path();
        let loader = self.loader;
        let scope = match self.options.file_access {
            FileAccess::KustomizationDir => dir,
            FileAccess::BuildRoot => loader.root(),
        };
        let ctx = Context {
            loader,
            dir,
            scope,
            file,
        };
        loader.check(
            resources.resources.len(),
            self.stack.len().saturating_sub(1),
        )?;
        let mut loaded = ResMap::default();
        for (i, reference) in kustomization.resources.iter().enumerate() {
            loader.check(resources.resources.len() + loaded.resources.len(), 0)?;
            let field = format!("resources[{i}]");
            let path = loader.resolve(dir, reference, loader.root(), file, &field)?;
            if path.is_dir() {
                let nested = self.nested(&path, false, file, &field, ResMap::default())?;
                loaded.resources.extend(nested.resources);
                loaded.merge_vars(nested.vars.into_values(), file)?;
                loaded
                    .config
                    .merge(&nested.config)
                    .map_err(|e| Error::invalid(file, &field, e))?;
            } else {
                loader.resolve(dir, reference, ctx.scope, file, &field)?;
                let bytes = loader.read_counted(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                loader.check_read()?;
                let text = crate::load::text(&path, bytes)?;
                for object in objects_from_text(&text, &path)? {
                    let mut resource = Resource::new(object, path.clone());
                    if self.metadata.tracks() {
                        set_origin(&mut resource, &file_origin(&self.top, &path), true);
                    }
                    loaded.resources.push(resource);
                }
            }
        }
        resources.append_all(loaded, file)?;
        let own = own_config(kustomization, &ctx)?;
        resources
            .config
            .merge(&own)
            .map_err(|e| Error::invalid(file, "configurations", e))?;
        for (i, args) in kustomization.config_map_generator.iter().enumerate() {
            let field = format!("configMapGenerator[{i}]");
            let mut generated = generate(
                GeneratedKind::ConfigMap,
                args,
                kustomization.generator_options.as_ref(),
                &ctx,
                &field,
            )?;
            self.generator_origin(&mut generated, file, "ConfigMapGenerator");
            resources.absorb(generated, file, &field)?;
        }
        for (i, args) in kustomization.secret_generator.iter().enumerate() {
            let field = format!("secretGenerator[{i}]");
            let mut generated = generate(
                GeneratedKind::Secret,
                args,
                kustomization.generator_options.as_ref(),
                &ctx,
                &field,
            )?;
            self.generator_origin(&mut generated, file, "SecretGenerator");
            resources.absorb(generated, file, &field)?;
        }
        if self.metadata.tracks() && !kustomization.generators.is_empty() {
            return Err(Error::unsupported(
                "`buildMetadata: [originAnnotations]` or `[transformerAnnotations]` with `generators` plugins",
                file,
            ));
        }
        let generators = self.plugin_configs(&kustomization.generators, "generators", &ctx)?;
        for config in &generators {
            plugins::run_generator(&mut resources, config, &ctx)?;
        }
        for (i, reference) in kustomization.components.iter().enumerate() {
            let field = format!("components[{i}]");
            let path = loader.resolve(dir, reference, loader.root(), file, &field)?;
            if !path.is_dir() {
                return Err(Error::invalid(
                    file,
                    field,
                    format!("component `{reference}` must be a directory"),
                ));
            }
            resources = self.nested(&path, true, file, &field, resources)?;
        }
        loader.check(resources.resources.len(), 0)?;
        let transformers =
            self.plugin_configs(&kustomization.transformers, "transformers", &ctx)?;
        let trace = Trace {
            top: self.metadata.tracks().then_some(self.top.as_path()),
            file,
        };
        transform(&mut resources, kustomization, &ctx, &trace)?;
        for config in &transformers {
            plugins::run_transformer(&mut resources, config, &ctx)?;
            if let Some(origin) = &config.origin {
                record_transformation(&mut resources.resources, origin);
            }
        }
        loader.check(resources.resources.len(), 0)?;
        vars::declare(&mut resources, &kustomization.vars, file)?;
        Ok(resources)
    }

    /// Annotates a generated object with the built-in generator `kind` of `file`, if asked for.
    fn generator_origin(&self, generated: &mut Resource, file: &Path, kind: &str) {
        if self.metadata.tracks() {
            set_origin(generated, &generator_origin(&self.top, file, kind), false);
        }
    }

    /// Loads `transformers` or `generators` entries: inline YAML, files, or directories whose
    /// kustomization builds the plugin configs. Inline entries come first, then the others,
    /// each in listed order, as kustomize loads them.
    fn plugin_configs(
        &mut self,
        entries: &[String],
        name: &str,
        ctx: &Context,
    ) -> Result<Vec<PluginConfig>> {
        let mut configs = Vec::new();
        let mut from_files = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let field = format!("{name}[{i}]");
            let inline = objects_from_text(entry, ctx.file)
                .ok()
                .filter(|objects| !objects.is_empty());
            let is_inline = inline.is_some();
            let (objects, source) = match inline {
                Some(objects) => (objects, Some(ctx.file.to_path_buf())),
                None => {
                    let loader = self.loader;
                    let path = loader.resolve(ctx.dir, entry, loader.root(), ctx.file, &field)?;
                    if path.is_dir() {
                        let built =
                            self.nested(&path, false, ctx.file, &field, ResMap::default())?;
                        let objects = built.resources.into_iter().map(|r| r.object).collect();
                        (objects, None)
                    } else {
                        let (path, bytes) = ctx.read(entry, &field)?;
                        let objects = objects_from_text(&crate::load::text(&path, bytes)?, &path)?;
                        (objects, Some(path))
                    }
                }
            };
            for object in objects {
                let origin = self.plugin_origin(source.as_deref(), &object);
                let config = PluginConfig {
                    field: field.clone(),
                    object,
                    origin,
                };
                if is_inline {
                    configs.push(config);
                } else {
                    from_files.push(config);
                }
            }
        }
        configs.append(&mut from_files);
        Ok(configs)
    }

    /// The transformer origin of a plugin config read from `source` (a directory's objects
    /// carry their own origin annotation); none when origins are not tracked.
    fn plugin_origin(&self, source: Option<&Path>, object: &Value) -> Option<TransformerOrigin> {
        if !self.metadata.tracks() {
            return None;
        }
        let configured_in = match source {
            Some(path) => relative(&self.top, path),
            None => object
                .pointer("/metadata/annotations")
                .and_then(|annotations| annotations.get(crate::metadata::ORIGIN))
                .and_then(Value::as_str)?
                .lines()
                .find_map(|line| line.strip_prefix("path: "))?
                .to_owned(),
        };
        Some(TransformerOrigin::plugin(configured_in, object))
    }

    /// Builds a nested kustomization (a base) or applies a component to `resources`.
    fn nested(
        &mut self,
        dir: &Path,
        component: bool,
        file: &Path,
        field: &str,
        resources: ResMap,
    ) -> Result<ResMap> {
        if self.stack.iter().any(|d| d == dir) {
            return Err(Error::invalid(
                file,
                field,
                format!("cycle detected: {} includes itself", dir.display()),
            ));
        }
        let Some(nested_file) = self.loader.kustomization_file(dir)? else {
            return Err(Error::MissingKustomization {
                dir: dir.to_path_buf(),
            });
        };
        let nested = read_kustomization(&nested_file)?;
        match (component, nested.is_component) {
            (true, false) => {
                return Err(Error::invalid(
                    &nested_file,
                    "kind",
                    "expected kind Component",
                ));
            }
            (false, true) => {
                return Err(Error::invalid(
                    &nested_file,
                    "kind",
                    "a Component must be listed under `components`",
                ));
            }
            _ => {}
        }
        self.stack.push(dir.to_path_buf());
        let result = self.accumulate(&nested, dir, resources);
        self.stack.pop();
        result
    }
}

/// The built-in transformer config extended by the kustomization's `configurations` files.
fn own_config(kustomization: &Kustomization, ctx: &Context) -> Result<TransformerConfig> {
    let mut config = builtin().clone();
    for (i, reference) in kustomization.configurations.iter().enumerate() {
        let field = format!("configurations[{i}]");
        let (path, bytes) = ctx.read(reference, &field)?;
        let text = crate::load::text(&path, bytes)?;
        let value =
            yaml::parse_single_as(&text, yaml::Dialect::V2).map_err(|source| Error::Yaml {
                file: path.clone(),
                source,
            })?;
        let loaded =
            TransformerConfig::from_value(&value, &crate::kustomization::Fields { file: &path })?;
        config
            .merge(&loaded)
            .map_err(|e| Error::invalid(&path, "(document)", e))?;
    }
    Ok(config)
}
