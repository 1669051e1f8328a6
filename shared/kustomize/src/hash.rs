//! The name-suffix hash of generated ConfigMaps and Secrets, identical to kustomize's: SHA-256 of
//! a Go-style JSON encoding of the kind and data, cut to 10 characters.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::resource::scalar_text;

/// The hash suffix for a ConfigMap or Secret object, or `None` for other kinds.
pub(crate) fn content_hash(object: &Value) -> Option<String> {
    let kind = object.get("kind").map(scalar_text).unwrap_or_default();
    let field = |name: &str| match object.get(name) {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(Value::Array(_)) => Value::Null,
        Some(scalar) => Value::String(scalar_text(scalar)),
    };
    let mut encoded = Map::new();
    encoded.insert("kind".to_string(), Value::String(kind.clone()));
    // kustomize looks the name up as one field literally named `metadata/name`, which never
    // exists, so the name is always empty.
    encoded.insert("name".to_string(), Value::String(String::new()));
    encoded.insert("data".to_string(), field("data"));
    let extra = match kind.as_str() {
        "ConfigMap" => "binaryData",
        "Secret" => {
            encoded.insert("type".to_string(), field("type"));
            "stringData"
        }
        _ => return None,
    };
    if let Some(Value::Object(map)) = object.get(extra) {
        encoded.insert(extra.to_string(), Value::Object(map.clone()));
    }
    let mut json = String::new();
    write_go_json(&Value::Object(encoded), &mut json);
    Some(encode(&Sha256::digest(json.as_bytes())))
}

/// The first 10 hex digits, with `0 1 3 a e` swapped for letters so no suffix looks numeric or
/// forms a word.
fn encode(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// JSON as Go's `encoding/json` writes it: sorted keys, HTML-safe escapes, float64 numbers.
fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_float(n.as_f64().unwrap_or_default())),
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float64 the way Go's JSON encoder prints it.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_escapes_like_go() {
        let mut out = String::new();
        write_go_json(&json!({"b": "<&>\u{1}", "a": 1.5e-7, "c": 100}), &mut out);
        assert_eq!(
            out,
            r#"{"a":1.5e-7,"b":"\u003c\u0026\u003e\u0001","c":100}"#
        );
    }

    #[test]
    fn configmap_hash_matches_kustomize() {
        // kustomize: configMapGenerator name=cm, literals [a=b] gives cm-4h2mbtbbt6.
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}});
        assert_eq!(content_hash(&object).unwrap(), "4h2mbtbbt6");
    }
}
