//! The transformers a kustomization's fields configure, run in kustomize's order with one
//! instance per entry, each run recorded for `buildMetadata: [transformerAnnotations]`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fieldspecs::{FieldSpec, TransformerConfig, merge_spec};
use crate::kustomization::Kustomization;
use crate::load::Context;
use crate::metadata::{TransformerOrigin, record_transformation};
use crate::resmap::ResMap;
use crate::resource::Gvk;
use crate::transformers::prefix::Affix;
use crate::transformers::{images, labels, namespace, prefix, replicas};
use crate::{patch, replacements};

/// Records the built-in transformers' runs when origins are tracked (`top` set).
pub(crate) struct Trace<'a> {
    pub top: Option<&'a Path>,
    pub file: &'a Path,
}

impl Trace<'_> {
    fn ran(&self, resources: &mut ResMap, kind: &str) {
        if let Some(top) = self.top {
            let origin = TransformerOrigin::builtin(top, self.file, kind);
            record_transformation(&mut resources.resources, &origin);
        }
    }
}

/// Runs the transformers in kustomize's order, one instance per entry as kustomize configures them.
pub(crate) fn transform(
    resources: &mut ResMap,
    k: &Kustomization,
    ctx: &Context,
    trace: &Trace,
) -> Result<()> {
    let config = resources.config.clone();
    if !k.patches_strategic_merge.is_empty() {
        patch::apply_strategic_merge_files(resources, &k.patches_strategic_merge, ctx, &|i| {
            format!("patchesStrategicMerge[{i}]")
        })?;
        trace.ran(resources, "PatchStrategicMergeTransformer");
    }
    for (i, entry) in k.patches.iter().enumerate() {
        patch::apply_patches(resources, std::slice::from_ref(entry), ctx, &|_| {
            format!("patches[{i}]")
        })?;
        trace.ran(resources, "PatchTransformer");
    }
    if !k.namespace.is_empty() {
        namespace::apply(
            resources,
            &k.namespace,
            &config.namespace,
            namespace::Options::default(),
            ctx,
        )?;
        trace.ran(resources, "NamespaceTransformer");
    }
    if !k.name_prefix.is_empty() {
        prefix::apply(
            resources,
            Affix::Prefix,
            &k.name_prefix,
            &config.name_prefix,
            ctx,
        )?;
        trace.ran(resources, "PrefixTransformer");
    }
    if !k.name_suffix.is_empty() {
        prefix::apply(
            resources,
            Affix::Suffix,
            &k.name_suffix,
            &config.name_suffix,
            ctx,
        )?;
        trace.ran(resources, "SuffixTransformer");
    }
    label_and_annotate(resources, k, &config, ctx, trace)?;
    for (i, entry) in k.patches_json6902.iter().enumerate() {
        patch::apply_json6902_entries(resources, std::slice::from_ref(entry), ctx, &|_| {
            format!("patchesJson6902[{i}]")
        })?;
        trace.ran(resources, "PatchJson6902Transformer");
    }
    for (i, replica) in k.replicas.iter().enumerate() {
        replicas::apply(
            resources,
            replica,
            &config.replicas,
            ctx,
            &format!("replicas[{i}]"),
        )?;
        trace.ran(resources, "ReplicaCountTransformer");
    }
    for (i, image) in k.images.iter().enumerate() {
        images::apply(
            resources,
            image,
            &config.images,
            ctx,
            &format!("images[{i}]"),
        )?;
        trace.ran(resources, "ImageTagTransformer");
    }
    if !k.replacements.is_empty() {
        let loaded = replacements::load(&k.replacements, ctx)?;
        replacements::apply(resources, &loaded, ctx)?;
        trace.ran(resources, "ReplacementTransformer");
    }
    Ok(())
}

/// `labels`, `commonLabels` and `commonAnnotations`; kustomize runs a label transformer for
/// `commonLabels` (even an empty one) whenever either label field is set.
fn label_and_annotate(
    resources: &mut ResMap,
    k: &Kustomization,
    config: &TransformerConfig,
    ctx: &Context,
    trace: &Trace,
) -> Result<()> {
    for (i, label) in k.labels.iter().enumerate() {
        let field = format!("labels[{i}]");
        let specs = label_specs(label, config).map_err(|e| Error::invalid(ctx.file, &field, e))?;
        labels::apply(resources, &label.pairs, &specs, ctx, &field)?;
        trace.ran(resources, "LabelTransformer");
    }
    labels::apply(
        resources,
        &k.common_labels,
        &config.common_labels,
        ctx,
        "commonLabels",
    )?;
    if !k.labels.is_empty() || !k.common_labels.is_empty() {
        trace.ran(resources, "LabelTransformer");
    }
    labels::apply(
        resources,
        &k.common_annotations,
        &config.annotations,
        ctx,
        "commonAnnotations",
    )?;
    if !k.common_annotations.is_empty() {
        trace.ran(resources, "AnnotationsTransformer");
    }
    Ok(())
}

/// The field specs of a `labels` entry: its own fields, plus selectors (with
/// `includeSelectors`) or templates (with `includeTemplates`) and metadata.
fn label_specs(
    label: &crate::kustomization::Label,
    config: &TransformerConfig,
) -> std::result::Result<Vec<FieldSpec>, String> {
    let mut specs = label.fields.clone();
    let mut add = |extra: &[FieldSpec]| -> std::result::Result<(), String> {
        extra
            .iter()
            .try_for_each(|s| merge_spec(&mut specs, s.clone()))
    };
    add(&config.labels)?;
    if label.include_selectors {
        add(&config.common_labels)?;
    } else {
        if label.include_templates {
            add(&config.template_labels)?;
        }
        if label.include_volume_claim_templates {
            add(&config.volume_claim_template_labels)?;
        }
        add(&[FieldSpec {
            gvk: Gvk::default(),
            path: "metadata/labels".to_string(),
            create: true,
        }])?;
    }
    Ok(specs)
}
