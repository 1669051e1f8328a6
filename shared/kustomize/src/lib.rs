//! A native kustomize build engine: builds a directory into the same list of objects, with the
//! same field values and in the same order, as `kustomize build` (v5).
//!
//! Safe by default: nothing is read from outside the build root, remote bases, plugins other
//! than kustomize's built-in ones, exec functions and Helm charts are refused, and every
//! feature it does not implement is an [`Error::Unsupported`] naming the feature and the file
//! rather than a different output.
//!
//! Supported: resources (files, `List`s, nested kustomizations, `bases`), components,
//! `namespace`, `namePrefix`/`nameSuffix` with name-reference fix-ups, `labels`,
//! `commonLabels`, `commonAnnotations`, `images`, `replicas`, `patches` (strategic merge and
//! JSON 6902, with target selectors), `patchesStrategicMerge`, `patchesJson6902`,
//! `configMapGenerator`, `secretGenerator`, `generatorOptions`, `replacements`, `vars`,
//! `configurations`, `sortOptions`, and `transformers`/`generators` configuring kustomize's
//! built-in plugins, and `buildMetadata` (`originAnnotations`, `transformerAnnotations`,
//! `managedByLabel`). Refused: other plugins, `validators`, Helm fields, `crds`, `openapi`,
//! remote sources.
//!
//! Conformance with `kustomize build` is checked case by case in `tests/conformance.rs`.
//!
//! ```no_run
//! let objects = sluice_kustomize::build(std::path::Path::new("deploy/overlays/prod"))?;
//! print!("{}", sluice_kustomize::to_yaml(&objects));
//! # Ok::<(), sluice_kustomize::Error>(())
//! ```

mod build;
mod error;
mod field_transformers;
mod fieldpath;
mod fieldspecs;
mod generators;
mod goyaml;
mod hash;
mod kustomization;
mod linked;
mod load;
mod metadata;
mod namereference;
mod patch;
mod plugins;
mod replacements;
mod resmap;
mod resource;
mod schema;
mod selector;
mod sort;
mod transformers;
mod vars;
mod yaml;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use error::{Error, Result};
pub use goyaml::go_yaml_v2_stream;
pub use load::KUSTOMIZATION_FILE_NAMES;
pub use metadata::KUSTOMIZE_VERSION;
pub use selector::{InvalidSelector, ObjectSelector, SelectorFields};
pub use yaml::YamlError;

/// What to do when the build root has no kustomization file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKustomization {
    /// Fail, as `kustomize build` does.
    #[default]
    Error,
    /// Use every Kubernetes YAML file below the root, and every subdirectory with its own
    /// kustomization file, as resources (what Flux's kustomize-controller generates).
    GenerateLikeFlux,
}

/// Which files a kustomization may name (patches, generator sources, resource files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileAccess {
    /// Only files in or below the kustomization's own directory, like `kustomize build`'s
    /// default load restrictor.
    #[default]
    KustomizationDir,
    /// Any file in or below the build root, like Flux (which disables kustomize's restrictor
    /// but builds inside one source artifact).
    BuildRoot,
}

/// Options for [`build_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// The directory nothing may be read from outside of (a repository or artifact root);
    /// defaults to the directory being built. Bases may be anywhere inside it.
    pub root: Option<PathBuf>,
    pub missing_kustomization: MissingKustomization,
    pub file_access: FileAccess,
    pub limits: BuildLimits,
    pub order: BuildOrder,
}

/// The order of the built objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BuildOrder {
    /// `kustomize build`: the kustomization's `sortOptions`, else kustomize's legacy kind order.
    #[default]
    Legacy,
    /// Flux's build (`krusty.Options{}` with no reorder): the kustomization's `sortOptions` if it
    /// has them, else the order the resources were listed and generated in.
    AsListed,
}

/// What one build may consume, so a crafted tree (a base included many times over) cannot hold
/// a worker or exhaust memory; exceeding one is [`Error::LimitExceeded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildLimits {
    /// Most objects the build holds at any step.
    pub max_objects: usize,
    /// Most bytes of files read, a base counted again each time it is included.
    pub max_bytes: u64,
    /// Deepest nesting of bases and components.
    pub max_depth: usize,
    /// Longest the build may run; checked between files and steps.
    pub timeout: Option<Duration>,
}

impl Default for BuildLimits {
    fn default() -> Self {
        Self {
            max_objects: 20_000,
            max_bytes: 256 << 20,
            max_depth: 64,
            timeout: None,
        }
    }
}

/// Builds the kustomization in `dir` like `kustomize build dir`.
pub fn build(dir: &Path) -> Result<Vec<Value>> {
    build_with(dir, &BuildOptions::default())
}

/// Builds the kustomization in `dir` with `options`.
pub fn build_with(dir: &Path, options: &BuildOptions) -> Result<Vec<Value>> {
    build::build(dir, options)
}

/// The `resources` list Flux would generate for `dir` when it has no kustomization file.
pub fn flux_resources(dir: &Path) -> Result<Vec<String>> {
    load::flux_resources(dir)
}

/// Renders objects as a multi-document YAML stream.
pub fn to_yaml(objects: &[Value]) -> String {
    yaml::render(objects)
}

/// Parses a multi-document YAML stream the way kustomize reads it (for comparing outputs).
pub fn parse_yaml_stream(text: &str) -> std::result::Result<Vec<Value>, YamlError> {
    yaml::parse_documents(text)
}
