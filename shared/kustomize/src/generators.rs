//! `configMapGenerator` and `secretGenerator`: key/value pairs from env files, literals and
//! files, with `generatorOptions` and the generator `behavior`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::load::Context;
use crate::resource::{Behavior, Resource};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeneratedKind {
    ConfigMap,
    Secret,
}

/// Generates one ConfigMap or Secret from its arguments and the kustomization's global options.
pub(crate) fn generate(
    kind: GeneratedKind,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
    ctx: &Context,
    field: &str,
) -> Result<Resource> {
    if args.name.is_empty() {
        return Err(Error::invalid(
            ctx.file,
            format!("{field}.name"),
            "a generated object must have a name",
        ));
    }
    let options = merged_options(args.options.as_ref(), global);
    let pairs = load_pairs(args, ctx, field)?;
    let mut metadata = Map::new();
    metadata.insert("name".to_string(), Value::String(args.name.clone()));
    if !args.namespace.is_empty() {
        metadata.insert(
            "namespace".to_string(),
            Value::String(args.namespace.clone()),
        );
    }
    for (key, values) in [
        ("labels", &options.labels),
        ("annotations", &options.annotations),
    ] {
        if let Some(bad) = values.keys().find(|k| !crate::yaml::is_plain_string(k)) {
            return Err(Error::invalid(
                ctx.file,
                format!("{field}.options.{key}"),
                format!("kustomize cannot add the key `{bad}`: it would read back as a non-string"),
            ));
        }
        if !values.is_empty() {
            let map = values
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            metadata.insert(key.to_string(), Value::Object(map));
        }
    }
    let mut object = Map::new();
    object.insert("apiVersion".to_string(), json!("v1"));
    object.insert("metadata".to_string(), Value::Object(metadata));
    match kind {
        GeneratedKind::ConfigMap => {
            object.insert("kind".to_string(), json!("ConfigMap"));
            let mut data = Map::new();
            let mut binary = Map::new();
            for (key, bytes) in pairs {
                match String::from_utf8(bytes) {
                    Ok(text) => data.insert(key, Value::String(text)),
                    Err(e) => binary.insert(key, Value::String(wrapped_base64(e.as_bytes()))),
                };
            }
            if !data.is_empty() {
                object.insert("data".to_string(), Value::Object(data));
            }
            if !binary.is_empty() {
                object.insert("binaryData".to_string(), Value::Object(binary));
            }
        }
        GeneratedKind::Secret => {
            object.insert("kind".to_string(), json!("Secret"));
            let secret_type = if args.secret_type.is_empty() {
                "Opaque"
            } else {
                &args.secret_type
            };
            object.insert("type".to_string(), Value::String(secret_type.to_string()));
            let data = pairs
                .into_iter()
                .map(|(k, bytes)| (k, Value::String(wrapped_base64(&bytes))))
                .collect();
            object.insert("data".to_string(), Value::Object(data));
        }
    }
    if options.immutable {
        object.insert("immutable".to_string(), Value::Bool(true));
    }
    let mut resource = Resource::new(Value::Object(object), ctx.file.to_path_buf());
    resource.needs_hash_suffix = !options.disable_name_suffix_hash;
    resource.behavior = match args.behavior.as_str() {
        "create" => Behavior::Create,
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        _ => Behavior::Unspecified,
    };
    Ok(resource)
}

/// Local options, with global labels and annotations filling gaps and global flags forcing on.
fn merged_options(
    local: Option<&GeneratorOptions>,
    global: Option<&GeneratorOptions>,
) -> GeneratorOptions {
    let mut options = local.cloned().unwrap_or_default();
    if let Some(global) = global {
        for (key, value) in &global.labels {
            options
                .labels
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        for (key, value) in &global.annotations {
            options
                .annotations
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        options.disable_name_suffix_hash |= global.disable_name_suffix_hash;
        options.immutable |= global.immutable;
    }
    options
}

/// Key/value pairs from env files, then literals, then files; keys must be unique.
fn load_pairs(
    args: &GeneratorArgs,
    ctx: &Context,
    field: &str,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut pairs: Vec<(String, Vec<u8>, String)> = Vec::new();
    for (i, env) in args.envs.iter().enumerate() {
        let env_field = format!("{field}.envs[{i}]");
        let (path, bytes) = ctx.read(env, &env_field)?;
        for (key, value) in env_pairs(&bytes).map_err(|e| Error::invalid(&path, &env_field, e))? {
            pairs.push((key, value.into_bytes(), env_field.clone()));
        }
    }
    for (i, literal) in args.literals.iter().enumerate() {
        let literal_field = format!("{field}.literals[{i}]");
        let (key, value) =
            literal_pair(literal).map_err(|e| Error::invalid(ctx.file, &literal_field, e))?;
        pairs.push((key, value.into_bytes(), literal_field));
    }
    for (i, source) in args.files.iter().enumerate() {
        let file_field = format!("{field}.files[{i}]");
        let (key, path) =
            file_source(source).map_err(|e| Error::invalid(ctx.file, &file_field, e))?;
        let (_, bytes) = ctx.read(&path, &file_field)?;
        pairs.push((key, bytes, file_field));
    }
    let mut map = BTreeMap::new();
    for (key, value, source) in pairs {
        if !crate::yaml::is_plain_string(&key) {
            return Err(Error::invalid(
                ctx.file,
                source,
                format!("kustomize cannot add the key `{key}`: it would read back as a non-string"),
            ));
        }
        if map.insert(key.clone(), value).is_some() {
            return Err(Error::invalid(
                ctx.file,
                source,
                format!("{} illegally repeats the key `{key}`", args.name),
            ));
        }
    }
    Ok(map)
}

/// `KEY=value` lines; blank lines and `#` comments are skipped, a key without `=` is empty.
fn env_pairs(bytes: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = std::str::from_utf8(line)
            .map_err(|_| format!("line {} has invalid UTF-8", number + 1))?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// `key=value`, with one pair of matching quotes around the value removed.
fn literal_pair(source: &str) -> std::result::Result<(String, String), String> {
    match source.split_once('=') {
        Some((key, value)) if !key.is_empty() => {
            let unquoted = match value.as_bytes() {
                [first @ (b'"' | b'\''), .., last] if first == last => &value[1..value.len() - 1],
                _ => value,
            };
            Ok((key.to_string(), unquoted.to_string()))
        }
        _ => Err(format!(
            "invalid literal source `{source}`, expected key=value"
        )),
    }
}

/// `path` (key is the file name) or `key=path`.
fn file_source(source: &str) -> std::result::Result<(String, String), String> {
    match source.matches('=').count() {
        0 => {
            let trimmed = source.trim_end_matches('/');
            let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
            let key = if base.is_empty() { "/" } else { base };
            Ok((key.to_string(), source.to_string()))
        }
        1 if source.starts_with('=') => Err(format!(
            "missing key name for file path in source `{source}`"
        )),
        1 if source.ends_with('=') => Err(format!(
            "missing file path for key name in source `{source}`"
        )),
        1 => {
            let (key, path) = source.split_once('=').unwrap_or((source, ""));
            Ok((key.to_string(), path.to_string()))
        }
        _ => Err(format!(
            "source `{source}`: key name or file path contains '='"
        )),
    }
}

/// Base64 broken into 70-character lines (each ending in a newline) once it reaches 70 characters.
fn wrapped_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_sources_parse() {
        assert_eq!(literal_pair("a='b c'").unwrap(), ("a".into(), "b c".into()));
        assert_eq!(literal_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(literal_pair("=b").is_err());
        assert_eq!(
            file_source("dir/app.conf").unwrap(),
            ("app.conf".into(), "dir/app.conf".into())
        );
        assert_eq!(
            file_source("k=dir/app.conf").unwrap(),
            ("k".into(), "dir/app.conf".into())
        );
        assert!(file_source("a=b=c").is_err());
    }

    #[test]
    fn env_files_parse() {
        let pairs = env_pairs(b"# c\n A=1\r\nB\n\nC=x=y\n").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), String::new()),
                ("C".into(), "x=y".into())
            ]
        );
    }

    #[test]
    fn long_base64_wraps() {
        assert_eq!(wrapped_base64(b"ab"), "YWI=");
        let long = wrapped_base64(&[0u8; 60]);
        assert!(long.ends_with('\n') && long.lines().next().unwrap().len() == 70);
    }
}
