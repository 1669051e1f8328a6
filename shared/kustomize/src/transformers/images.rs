//! `images`: rewrites container images (name, tag, digest, tag suffix) in every
//! `containers`/`initContainers` list and the image volume fields, except in CRDs.

use regex::Regex;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspecs::FieldSpec;
use crate::kustomization::Image;
use crate::load::Context;
use crate::resmap::ResMap;
use crate::resource::scalar_text;

pub(crate) fn apply(
    resources: &mut ResMap,
    image: &Image,
    specs: &[FieldSpec],
    ctx: &Context,
    field: &str,
) -> Result<()> {
    // Like kustomize, the name is used as a regular expression; an invalid one matches nothing.
    let pattern = format!(
        "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{{}}-]*)?$",
        image.name
    );
    let matcher = Regex::new(&pattern).ok();
    let update = |value: &mut Value| -> Result<(), String> {
        match value {
            Value::Object(_) | Value::Array(_) => Err("an image must be a scalar".to_string()),
            scalar => {
                let current = scalar_text(scalar);
                if let Some(updated) = matcher
                    .as_ref()
                    .filter(|m| m.is_match(&current))
                    .map(|_| rewrite(&current, image))
                {
                    *scalar = Value::String(updated);
                }
                Ok(())
            }
        }
    };
    for resource in &mut resources.resources {
        if resource.kind() == "CustomResourceDefinition" {
            continue;
        }
        update_container_lists(&mut resource.object, &update)
            .map_err(|e| Error::invalid(ctx.file, field, e))?;
        for spec in specs {
            fieldpath::apply(&mut resource.object, spec, Create::Nothing, &mut |v| {
                update(v)
            })
            .map_err(|e| Error::invalid(ctx.file, field, e))?;
        }
    }
    Ok(())
}

/// Visits every `containers` and `initContainers` list anywhere in the object.
fn update_container_lists(
    value: &mut Value,
    update: &dyn Fn(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                update_container_lists(child, update)?;
                if (key == "containers" || key == "initContainers")
                    && let Value::Array(containers) = child
                {
                    for container in containers {
                        match container {
                            Value::Null => {}
                            Value::Object(fields) => {
                                if let Some(image) = fields.get_mut("image") {
                                    update(image)?;
                                }
                            }
                            _ => return Err(format!("`{key}` entries must be mappings")),
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| update_container_lists(item, update)),
        _ => Ok(()),
    }
}

/// Applies the new name, tag, digest or tag suffix to an image reference.
fn rewrite(reference: &str, image: &Image) -> String {
    let (mut name, mut tag, mut digest) = split(reference);
    if !image.new_name.is_empty() {
        name = image.new_name.clone();
    }
    if !image.new_tag.is_empty() && !image.digest.is_empty() {
        tag = image.new_tag.clone();
        digest = image.digest.clone();
    } else if !image.new_tag.is_empty() {
        tag = image.new_tag.clone();
        digest.clear();
    } else if !image.digest.is_empty() {
        tag.clear();
        digest = image.digest.clone();
    } else if !image.tag_suffix.is_empty() {
        tag.push_str(&image.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    name
}

/// Splits `name[:tag][@digest]`, ignoring a `:` in the registry host.
fn split(reference: &str) -> (String, String, String) {
    let slash = reference.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &reference[slash..];
    let at = search.find('@').map(|i| i + slash);
    let colon = search.find(':').map(|i| i + slash);
    match (colon, at) {
        (None, None) => (reference.to_string(), String::new(), String::new()),
        (c, Some(a)) if c.is_none_or(|c| a < c) => (
            reference[..a].to_string(),
            String::new(),
            reference[a + 1..].to_string(),
        ),
        (Some(c), Some(a)) => (
            reference[..c].to_string(),
            reference[c + 1..a].to_string(),
            reference[a + 1..].to_string(),
        ),
        (Some(c), None) => (
            reference[..c].to_string(),
            reference[c + 1..].to_string(),
            String::new(),
        ),
        (None, Some(_)) => (reference.to_string(), String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_kustomize() {
        assert_eq!(split("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(
            split("reg:5000/nginx:1.2"),
            ("reg:5000/nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split("nginx@sha256:abc"),
            ("nginx".into(), "".into(), "sha256:abc".into())
        );
        assert_eq!(
            split("nginx:1@sha256:abc"),
            ("nginx".into(), "1".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn rewrites() {
        let image = Image {
            name: "nginx".into(),
            new_tag: "2".into(),
            ..Image::default()
        };
        assert_eq!(rewrite("nginx:1@sha256:abc", &image), "nginx:2");
        let image = Image {
            name: "nginx".into(),
            tag_suffix: "-x".into(),
            ..Image::default()
        };
        assert_eq!(rewrite("nginx:1", &image), "nginx:1-x");
    }
}
