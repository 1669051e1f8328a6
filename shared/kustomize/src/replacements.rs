//! `replacements`: copy a value (from a field of one resource, or a literal) into fields of the
//! selected target resources, optionally splitting on a delimiter or creating missing fields.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::kustomization::{
    FieldOptions, Fields, Replacement, ReplacementEntry, ReplacementTarget, Selector,
};
use crate::load::Context;
use crate::resmap::ResMap;
use crate::resource::{ResId, Resource, scalar_text};
use crate::selector::{AnchoredRegex, LabelSelector};

/// The replacements of a kustomization, with those from `path` entries read from their files.
pub(crate) fn load(
    entries: &[ReplacementEntry],
    ctx: &Context,
) -> Result<Vec<(String, Replacement)>> {
    let mut replacements = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("replacements[{i}]");
        match entry {
            ReplacementEntry::Inline(replacement) => {
                replacements.push((field, (**replacement).clone()))
            }
            ReplacementEntry::Path(path) => {
                let (file, bytes) = ctx.read(path, &format!("{field}.path"))?;
                let text = crate::load::text(&file, bytes)?;
                let value = crate::yaml::parse_single_as(&text, crate::yaml::Dialect::V2).map_err(
                    |source| Error::Yaml {
                        file: file.clone(),
                        source,
                    },
                )?;
                let items = match value {
                    Value::Array(items) => items,
                    single @ Value::Object(_) => vec![single],
                    _ => {
                        return Err(Error::invalid(
                            &file,
                            "(document)",
                            "expected a replacement or a list of replacements",
                        ));
                    }
                };
                let fields = Fields { file: &file };
                for (j, item) in items.iter().enumerate() {
                    let item_field = format!("[{j}]");
                    let map = &*fields.object(
                        item,
                        &item_field,
                        &["source", "sourceValue", "targets"],
                    )?;
                    replacements.push((
                        format!("{field} ({} {item_field})", file.display()),
                        fields.replacement(map, &item_field)?,
                    ));
                }
            }
        }
    }
    Ok(replacements)
}

pub(crate) fn apply(
    resources: &mut ResMap,
    replacements: &[(String, Replacement)],
    ctx: &Context,
) -> Result<()> {
    for (field, replacement) in replacements {
        let invalid = |message: String| Error::invalid(ctx.file, field, message);
        if (replacement.source.is_none() && replacement.source_value.is_none())
            || replacement.targets.is_empty()
        {
            return Err(invalid(
                "replacements must specify a source and at least one target".to_string(),
            ));
        }
        let value = source_value(resources, replacement).map_err(invalid)?;
        for target in &replacement.targets {
            apply_target(resources, &value, target, ctx, field)?;
        }
        crate::linked::propagate_all(resources);
    }
    Ok(())
}

/// The replacement value: a literal (typed like a plain YAML scalar) or a source field.
fn source_value(resources: &ResMap, replacement: &Replacement) -> Result<Value, String> {
    let source = match (&replacement.source, &replacement.source_value) {
        (Some(_), Some(_)) => {
            return Err("value and resource selectors are mutually exclusive".to_string());
        }
        (None, Some(text)) => return Ok(plain_scalar(text)),
        (Some(source), None) => source,
        (None, None) => return Err("replacements must specify a source".to_string()),
    };
    let selector = ResId {
        gvk: source.gvk.clone(),
        name: source.name.clone(),
        namespace: source.namespace.clone(),
    };
    let mut matches = resources
        .resources
        .iter()
        .filter(|r| r.all_ids().iter().any(|id| selected_by(id, &selector)));
    let Some(resource) = matches.next() else {
        return Err(format!("nothing selected by {selector}"));
    };
    if matches.next().is_some() {
        return Err(format!("multiple matches for selector {selector}"));
    }
    let field_path = if source.field_path.is_empty() {
        "metadata.name"
    } else {
        &source.field_path
    };
    let value = lookup(&resource.object, &split_path(field_path))?;
    let Some(value) = value.filter(|v| !is_nil_or_empty(v)) else {
        return Err(format!(
            "fieldPath `{field_path}` is missing for replacement source {selector}"
        ));
    };
    match &source.options {
        Some(options) if !options.delimiter.is_empty() => {
            if value.is_object() || value.is_array() {
                return Err("delimiter option can only be used with scalar nodes".to_string());
            }
            let text = scalar_text(value);
            let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
            let part = usize::try_from(options.index)
                .ok()
                .and_then(|i| parts.get(i));
            let Some(part) = part else {
                return Err(format!(
                    "options.index {} is out of bounds for value {text}",
                    options.index
                ));
            };
            Ok(retyped(value, part))
        }
        _ => Ok(value.clone()),
    }
}

/// kustomize's source selection: exact name, namespace compared as effective namespaces.
fn selected_by(id: &ResId, selector: &ResId) -> bool {
    (selector.name.is_empty() || selector.name == id.name)
        && (selector.namespace.is_empty() || selector.is_ns_equal(id))
        && id.gvk.is_selected_by(&selector.gvk)
}

fn apply_target(
    resources: &mut ResMap,
    value: &Value,
    target: &ReplacementTarget,
    ctx: &Context,
    field: &str,
) -> Result<()> {
    let invalid = |message: String| Error::invalid(ctx.file, field, message);
    let Some(select) = &target.select else {
        return Err(invalid(
            "target must specify resources to select".to_string(),
        ));
    };
    let select_matcher = IdMatcher::new(select).map_err(invalid)?;
    let reject_matchers: Vec<IdMatcher> = target
        .reject
        .iter()
        .filter(|r| {
            !(r.gvk.group.is_empty()
                && r.gvk.version.is_empty()
                && r.gvk.kind.is_empty()
                && r.name.is_empty()
                && r.namespace.is_empty())
        })
        .map(IdMatcher::new)
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    let label_rejects: Vec<&Selector> = target
        .reject
        .iter()
        .filter(|r| !r.label_selector.is_empty() || !r.annotation_selector.is_empty())
        .collect();
    let field_paths: Vec<String> = if target.field_paths.is_empty() {
        vec!["metadata.name".to_string()]
    } else {
        target.field_paths.clone()
    };
    for resource in &mut resources.resources {
        if !matches_labels(resource, select).map_err(invalid)? {
            continue;
        }
        let mut rejected = false;
        for reject in &label_rejects {
            rejected |= matches_labels(resource, reject).map_err(invalid)?;
        }
        let ids = resource.all_ids();
        if rejected
            || reject_matchers
                .iter()
                .any(|m| ids.iter().any(|id| m.matches(id)))
        {
            continue;
        }
        if !ids.iter().any(|id| select_matcher.matches(id)) {
            continue;
        }
        for path in &field_paths {
            copy_to(&mut resource.object, value, path, target.options.as_ref()).map_err(|e| {
                Error::invalid(
                    ctx.file,
                    field,
                    format!("target {} field `{path}`: {e}", resource.cur_id()),
                )
            })?;
        }
    }
    Ok(())
}

fn matches_labels(resource: &Resource, selector: &Selector) -> Result<bool, String> {
    let labels = LabelSelector::parse(&selector.label_selector)?;
    let annotations = LabelSelector::parse(&selector.annotation_selector)?;
    Ok(labels.matches(&resource.metadata_map("labels"))
        && annotations.matches(&resource.metadata_map("annotations")))
}

/// Regular expressions on group, version, kind, name and (raw) namespace.
struct IdMatcher {
    group: AnchoredRegex,
    version: AnchoredRegex,
    kind: AnchoredRegex,
    name: AnchoredRegex,
    namespace: AnchoredRegex,
}

impl IdMatcher {
    fn new(selector: &Selector) -> Result<IdMatcher, String> {
        Ok(IdMatcher {
            group: AnchoredRegex::new(&selector.gvk.group)?,
            version: AnchoredRegex::new(&selector.gvk.version)?,
            kind: AnchoredRegex::new(&selector.gvk.kind)?,
            name: AnchoredRegex::new(&selector.name)?,
            namespace: AnchoredRegex::new(&selector.namespace)?,
        })
    }

    fn matches(&self, id: &ResId) -> bool {
        self.group.matches(&id.gvk.group)
            && self.version.matches(&id.gvk.version)
            && self.kind.matches(&id.gvk.kind)
            && self.name.matches(&id.name)
            && self.namespace.matches(&id.namespace)
    }
}

fn copy_to(
    object: &mut Value,
    value: &Value,
    path: &str,
    options: Option<&FieldOptions>,
) -> Result<(), String> {
    let parts = split_path(path);
    if crosses_scalar(object, &parts) {
        return Err(
            "unsupported: replacing inside structured data held in a string field".to_string(),
        );
    }
    let create = options.is_some_and(|o| o.create);
    let mut count = 0;
    let mut set = |target: &mut Value, created: bool| -> Result<(), String> {
        count += 1;
        set_field(target, created, value, options)
    };
    match_path(object, &parts, create.then(|| kind_of(value)), &mut set)?;
    if count == 0 {
        let verb = if create { "find or create" } else { "find" };
        return Err(format!(
            "unable to {verb} field `{path}` in replacement target"
        ));
    }
    Ok(())
}

/// True when a prefix of the path (shorter than the whole) ends at a scalar.
fn crosses_scalar(object: &Value, parts: &[String]) -> bool {
    (1..parts.len()).any(|i| {
        matches!(lookup(object, &parts[..i]), Ok(Some(found)) if !found.is_object() && !found.is_array() && !found.is_null())
    })
}

/// Sets a matched field: collections are replaced, an existing scalar keeps its type (kustomize
/// swaps only its text), a scalar the replacement created reads like a plain YAML scalar, and an
/// existing null cannot take a value.
fn set_field(
    target: &mut Value,
    created: bool,
    value: &Value,
    options: Option<&FieldOptions>,
) -> Result<(), String> {
    let mut value = value.clone();
    if let Some(options) = options.filter(|o| !o.delimiter.is_empty()) {
        if target.is_object() || target.is_array() {
            return Err("delimiter option can only be used with scalar nodes".to_string());
        }
        let current = scalar_text(target);
        let mut parts: Vec<String> = current
            .split(options.delimiter.as_str())
            .map(String::from)
            .collect();
        let text = scalar_text(&value);
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, text),
            Ok(i) if i >= parts.len() => parts.push(text),
            Ok(i) => parts[i] = text,
        }
        value = retyped(&value, &parts.join(&options.delimiter));
    }
    let replacement = match &*target {
        Value::Object(_) | Value::Array(_) => value,
        _ if created => match value {
            Value::Object(_) | Value::Array(_) => value,
            scalar => plain_scalar(&scalar_text(&scalar)),
        },
        Value::Null => return Err("cannot replace a null value".to_string()),
        scalar => retyped(scalar, &scalar_text(&value)),
    };
    *target = replacement;
    Ok(())
}

/// `text` typed like `like` (kustomize keeps a scalar's tag when it swaps its text).
fn retyped(like: &Value, text: &str) -> Value {
    match like {
        Value::String(_) => Value::String(text.to_string()),
        Value::Number(_) => match plain_scalar(text) {
            number @ Value::Number(_) => number,
            _ => Value::String(text.to_string()),
        },
        Value::Bool(_) => match plain_scalar(text) {
            boolean @ Value::Bool(_) => boolean,
            _ => Value::String(text.to_string()),
        },
        _ => plain_scalar(text),
    }
}

/// A string read as a plain YAML scalar.
fn plain_scalar(text: &str) -> Value {
    match crate::yaml::parse_single(text) {
        Ok(value @ (Value::Null | Value::Bool(_) | Value::Number(_))) if !text.is_empty() => value,
        _ => Value::String(text.to_string()),
    }
}

#[derive(Clone, Copy)]
enum NodeKind {
    Map,
    List,
    Scalar,
}

fn kind_of(value: &Value) -> NodeKind {
    match value {
        Value::Object(_) => NodeKind::Map,
        Value::Array(_) => NodeKind::List,
        _ => NodeKind::Scalar,
    }
}

/// Splits a dotted field path, keeping `[a.b=c]` selectors whole and `\.` as a literal dot.
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut raw: Vec<String> = vec![String::new()];
    let pieces: Vec<&str> = path.split('.').collect();
    let pieces = if pieces.len() > 1 && pieces[0].is_empty() {
        &pieces[1..]
    } else {
        &pieces[..]
    };
    for (i, piece) in pieces.iter().enumerate() {
        let last = raw.len() - 1;
        if i == 0 {
            raw[0] = piece.to_string();
        } else if let Some(stripped) = raw[last].strip_suffix('\\') {
            raw[last] = format!("{stripped}.{piece}");
        } else {
            raw.push(piece.to_string());
        }
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i].starts_with('[') && !raw[i].ends_with(']') {
            let mut bracketed = vec![raw[i].clone()];
            while i < raw.len() - 1 {
                i += 1;
                bracketed.push(raw[i].clone());
                if raw[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(".");
            parts.push(if joined.contains('=') {
                joined
            } else {
                joined.trim_matches(|c| c == '[' || c == ']').to_string()
            });
        } else {
            parts.push(raw[i].clone());
        }
        i += 1;
    }
    parts
}

/// kustomize's path getter: fields, list indices (`-` for the last), `[key=value]` exact matches.
pub(crate) fn lookup<'v>(value: &'v Value, parts: &[String]) -> Result<Option<&'v Value>, String> {
    let mut current = value;
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let next = if let Ok(index) = part.parse::<i64>() {
            if index < 0 {
                return Err(format!("array index {index} cannot be negative"));
            }
            list_of(current)?
                .and_then(|items| usize::try_from(index).ok().and_then(|i| items.get(i)))
        } else if part == "-" {
            list_of(current)?.and_then(|items| items.last())
        } else if part == "*" {
            return Err("wildcard is not supported in a source field path".to_string());
        } else if part.starts_with('[') && part.ends_with(']') {
            let (key, wanted) = split_index(part)?;
            list_of(current)?.and_then(|items| {
                items.iter().find(|item| match (key.is_empty(), item) {
                    (true, Value::Object(_) | Value::Array(_)) => false,
                    (true, scalar) => scalar_text(scalar) == wanted,
                    (false, Value::Object(map)) => {
                        map.get(&key).is_some_and(|v| scalar_text(v) == wanted)
                    }
                    (false, _) => false,
                })
            })
        } else {
            match current {
                Value::Null => None,
                Value::Object(map) => map.get(part),
                _ => return Err(format!("cannot look up field `{part}` in a non-mapping")),
            }
        };
        match next {
            Some(next) if !next.is_null() => current = next,
            _ => return Ok(None),
        }
    }
    Ok(Some(current))
}

fn list_of(value: &Value) -> Result<Option<&Vec<Value>>, String> {
    match value {
        Value::Array(items) => Ok(Some(items)),
        Value::Null => Ok(None),
        _ => Err("expected a list".to_string()),
    }
}

fn split_index(part: &str) -> Result<(String, String), String> {
    let inner = part.trim_start_matches('[').trim_end_matches(']');
    match inner.split_once('=') {
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err(
            "list path element must contain fieldName=fieldValue for element to match".to_string(),
        ),
    }
}

/// kustomize's path matcher: like [`lookup`] but `*` visits every element, `[key=regex]` matches
/// every element whose field matches the (unanchored) regular expression, and missing fields
/// can be created.
fn match_path(
    node: &mut Value,
    parts: &[String],
    create: Option<NodeKind>,
    set: &mut dyn FnMut(&mut Value, bool) -> Result<(), String>,
) -> Result<(), String> {
    let parts: Vec<String> = parts
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    match_clean(node, &parts, create, set)
}

fn match_clean(
    node: &mut Value,
    parts: &[String],
    create: Option<NodeKind>,
    set: &mut dyn FnMut(&mut Value, bool) -> Result<(), String>,
) -> Result<(), String> {
    let Some((part, rest)) = parts.split_first() else {
        return set(node, false);
    };
    let next_kind = || match rest.first() {
        Some(next) if next.starts_with('[') && next.ends_with(']') => NodeKind::List,
        Some(next) if next.parse::<usize>().is_ok() => NodeKind::List,
        Some(_) => NodeKind::Map,
        None => create.unwrap_or(NodeKind::Scalar),
    };
    let empty = |kind: NodeKind| match kind {
        NodeKind::Map => Value::Object(Map::new()),
        NodeKind::List => Value::Array(Vec::new()),
        NodeKind::Scalar => Value::Null,
    };
    if let Ok(index) = part.parse::<usize>() {
        let Value::Array(items) = node else {
            return Err(format!("expected a list at `{part}`"));
        };
        let created = items.len() == index && create.is_some();
        if created {
            items.push(empty(next_kind()));
        }
        let Some(item) = items.get_mut(index) else {
            return Err(format!(
                "index {index} specified but only {} elements found",
                items.len()
            ));
        };
        if created && rest.is_empty() {
            return set(item, true);
        }
        return match_clean(item, rest, create, set);
    }
    if part == "*" {
        let Value::Array(items) = node else {
            return Err("`*` needs a list".to_string());
        };
        return items
            .iter_mut()
            .try_for_each(|item| match_clean(item, rest, create, set));
    }
    if part.starts_with('[') && part.ends_with(']') {
        let (key, pattern) = split_index(part)?;
        let regex =
            regex::Regex::new(&pattern).map_err(|e| format!("invalid pattern `{pattern}`: {e}"))?;
        let Value::Array(items) = node else {
            return Err(format!("expected a list at `{part}`"));
        };
        let mut matched = false;
        for item in items.iter_mut() {
            let text = match (key.is_empty(), &*item) {
                (true, value) => Some(display(value)),
                (false, Value::Object(map)) => map.get(&key).map(display),
                (false, _) => None,
            };
            if text.is_some_and(|t| regex.is_match(&t)) {
                matched = true;
                match_clean(item, rest, create, set)?;
            }
        }
        if !matched && create.is_some() {
            let scalar = plain_scalar(&pattern);
            items.push(if key.is_empty() {
                scalar
            } else {
                let mut map = Map::new();
                map.insert(key, scalar);
                Value::Object(map)
            });
            return match_clean(node, parts, create, set);
        }
        return Ok(());
    }
    let map = match node {
        Value::Object(map) => map,
        Value::Null => return Ok(()),
        _ => return Err(format!("cannot look up field `{part}` in a non-mapping")),
    };
    let created = !map.contains_key(part.as_str());
    if created {
        if create.is_none() {
            return Ok(());
        }
        map.insert(part.clone(), empty(next_kind()));
    }
    match map.get_mut(part.as_str()) {
        Some(child) if created && rest.is_empty() => set(child, true),
        Some(child) => match_clean(child, rest, create, set),
        None => Ok(()),
    }
}

/// A value's text as kustomize's matcher sees it (YAML for collections).
fn display(value: &Value) -> String {
    match value {
        Value::Object(_) | Value::Array(_) => crate::yaml::render(std::slice::from_ref(value))
            .trim()
            .to_string(),
        scalar => scalar_text(scalar),
    }
}

fn is_nil_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_split_with_selectors() {
        assert_eq!(
            split_path("spec.containers.[name=a.b].image"),
            ["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(split_path(r"data.a\.json"), ["data", "a.json"]);
    }

    #[test]
    fn matcher_uses_regexes_and_creates() {
        let mut obj = json!({"spec": {"containers": [{"name": "app", "image": "a"}, {"name": "sidecar", "image": "b"}]}});
        match_path(
            &mut obj,
            &split_path("spec.containers.[name=app].image"),
            None,
            &mut |v, _| {
                *v = json!("x");
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(obj["spec"]["containers"][0]["image"], "x");
        match_path(
            &mut obj,
            &split_path("spec.new.field"),
            Some(NodeKind::Scalar),
            &mut |v, _| {
                *v = json!(1);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(obj["spec"]["new"]["field"], 1);
    }
}
