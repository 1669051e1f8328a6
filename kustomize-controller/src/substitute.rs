//! `postBuild` variable substitution: bash-style `${var}` expressions in string values.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use sluice_api::kustomize::annotations::{DISABLED, SUBSTITUTE};

use crate::objects::{has_flag, subject};

static VARIABLE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[_a-zA-Z][_a-zA-Z0-9]*$").unwrap_or_else(|error| panic!("static regex: {error}"))
});

/// Substitution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error(
        "variable name {0:?} is invalid; names must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$"
    )]
    InvalidName(String),
    #[error(
        "{subject}: variable not set (strict mode): {name:?}; define it in spec.postBuild or give it a default with ${{{name}:=value}}"
    )]
    Undefined { subject: String, name: String },
    #[error("{subject}: {reason}")]
    Syntax { subject: String, reason: String },
}

/// Checks every variable name, as Flux does before substituting.
pub fn validate_names(variables: &BTreeMap<String, String>) -> Result<(), SubstituteError> {
    match variables.keys().find(|name| !VARIABLE_NAME.is_match(name)) {
        Some(name) => Err(SubstituteError::InvalidName(name.clone())),
        None => Ok(()),
    }
}

/// Substitutes `variables` into every object not opted out with the substitute annotation.
///
/// Strings that were changed and now read as a YAML number, boolean or null take that type, as
/// they do when Flux substitutes into the YAML text.
pub fn substitute_all(
    objects: &mut [Value],
    variables: &BTreeMap<String, String>,
    strict: bool,
) -> Result<(), SubstituteError> {
    for object in objects.iter_mut() {
        if has_flag(object, SUBSTITUTE, DISABLED) {
            continue;
        }
        let name = subject(object);
        substitute_value(object, variables, strict, &name)?;
    }
    Ok(())
}

fn substitute_value(
    value: &mut Value,
    variables: &BTreeMap<String, String>,
    strict: bool,
    subject: &str,
) -> Result<(), SubstituteError> {
    match value {
        Value::String(text) if text.contains('$') => {
            let replaced = expand(text, variables, strict, subject)?;
            if replaced != *text {
                *value = retype(replaced);
            }
        }
        Value::Array(items) => {
            for item in items {
                substitute_value(item, variables, strict, subject)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                substitute_value(item, variables, strict, subject)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The typed value a plain YAML scalar with this text resolves to.
fn retype(text: String) -> Value {
    match text.as_str() {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        "null" | "Null" | "NULL" | "~" => return Value::Null,
        _ => {}
    }
    if let Ok(number) = text.parse::<i64>() {
        return Value::from(number);
    }
    let looks_numeric = text
        .bytes()
        .all(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|byte| byte.is_ascii_digit());
    if looks_numeric
        && let Ok(number) = text.parse::<f64>()
        && let Some(number) = serde_json::Number::from_f64(number)
    {
        return Value::Number(number);
    }
    Value::String(text)
}

/// Expands `${...}` expressions in `text`; `$${` escapes to a literal `${`.
pub fn expand(
    text: &str,
    variables: &BTreeMap<String, String>,
    strict: bool,
    subject: &str,
) -> Result<String, SubstituteError> {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('$') {
        output.push_str(&rest[..position]);
        let after = &rest[position..];
        if let Some(escaped) = after.strip_prefix("$${") {
            output.push_str("${");
            rest = escaped;
            continue;
        }
        if !after.starts_with("${") {
            output.push('$');
            rest = &after[1..];
            continue;
        }
        let body_start = 2;
        let Some(length) = closing_brace(&after[body_start..]) else {
            return Err(SubstituteError::Syntax {
                subject: subject.to_owned(),
                reason: format!("unclosed variable expression in {text:?}"),
            });
        };
        let body = &after[body_start..body_start + length];
        output.push_str(&evaluate(body, variables, strict, subject)?);
        rest = &after[body_start + length + 1..];
    }
    output.push_str(rest);
    Ok(output)
}

/// Length up to the matching `}`, allowing nested `${...}` in defaults.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, character) in text.char_indices() {
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn evaluate(
    body: &str,
    variables: &BTreeMap<String, String>,
    strict: bool,
    subject: &str,
) -> Result<String, SubstituteError> {
    if let Some(name) = body.strip_prefix('#')
        && VARIABLE_NAME.is_match(name)
    {
        return Ok(lookup(name, variables, strict, subject)?
            .chars()
            .count()
            .to_string());
    }
    let name_length = body
        .char_indices()
        .find(|(_, character)| !(character.is_ascii_alphanumeric() || *character == '_'))
        .map_or(body.len(), |(index, _)| index);
    let (name, operator) = body.split_at(name_length);
    if !VARIABLE_NAME.is_match(name) {
        return Err(SubstituteError::Syntax {
            subject: subject.to_owned(),
            reason: format!("invalid variable expression ${{{body}}}"),
        });
    }
    let value = variables.get(name);
    let expand_word = |word: &str| expand(word, variables, strict, subject);
    let defaulted = |use_empty: bool, word: &str| -> Result<String, SubstituteError> {
        match value {
            Some(value) if !(use_empty && value.is_empty()) => Ok(value.clone()),
            _ => expand_word(word),
        }
    };
    for (prefix, use_empty) in [(":=", true), (":-", true), ("=", false), ("-", false)] {
        if let Some(word) = operator.strip_prefix(prefix) {
            return defaulted(use_empty, word);
        }
    }
    if operator.is_empty() {
        return lookup(name, variables, strict, subject);
    }
    let value = lookup(name, variables, strict, subject)?;
    let result = match operator {
        "^" => capitalize(&value, true),
        "^^" => value.to_uppercase(),
        "," => capitalize(&value, false),
        ",," => value.to_lowercase(),
        _ => {
            if let Some(pattern) = operator.strip_prefix("##") {
                trim_prefix(&value, &expand_word(pattern)?)
            } else if let Some(pattern) = operator.strip_prefix('#') {
                trim_prefix(&value, &expand_word(pattern)?)
            } else if let Some(pattern) = operator.strip_prefix("%%") {
                trim_suffix(&value, &expand_word(pattern)?)
            } else if let Some(pattern) = operator.strip_prefix('%') {
                trim_suffix(&value, &expand_word(pattern)?)
            } else if let Some(spec) = operator.strip_prefix("//") {
                let (from, to) = spec.split_once('/').unwrap_or((spec, ""));
                value.replace(&expand_word(from)?, &expand_word(to)?)
            } else if let Some(spec) = operator.strip_prefix('/') {
                let (from, to) = spec.split_once('/').unwrap_or((spec, ""));
                value.replacen(&expand_word(from)?, &expand_word(to)?, 1)
            } else if let Some(spec) = operator.strip_prefix(':') {
                substring(&value, spec).ok_or_else(|| SubstituteError::Syntax {
                    subject: subject.to_owned(),
                    reason: format!("invalid substring expression ${{{body}}}"),
                })?
            } else {
                return Err(SubstituteError::Syntax {
                    subject: subject.to_owned(),
                    reason: format!("unsupported variable expression ${{{body}}}"),
                });
            }
        }
    };
    Ok(result)
}

fn lookup(
    name: &str,
    variables: &BTreeMap<String, String>,
    strict: bool,
    subject: &str,
) -> Result<String, SubstituteError> {
    match variables.get(name) {
        Some(value) => Ok(value.clone()),
        None if strict => Err(SubstituteError::Undefined {
            subject: subject.to_owned(),
            name: name.to_owned(),
        }),
        None => Ok(String::new()),
    }
}

fn capitalize(value: &str, upper: bool) -> String {
    let mut characters = value.chars();
    match characters.next() {
        Some(first) if upper => first.to_uppercase().chain(characters).collect(),
        Some(first) => first.to_lowercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Patterns are literal, so shortest and longest matches coincide.
fn trim_prefix(value: &str, pattern: &str) -> String {
    value.strip_prefix(pattern).unwrap_or(value).to_owned()
}

fn trim_suffix(value: &str, pattern: &str) -> String {
    value.strip_suffix(pattern).unwrap_or(value).to_owned()
}

fn substring(value: &str, spec: &str) -> Option<String> {
    let characters: Vec<char> = value.chars().collect();
    let (offset, length) = match spec.split_once(':') {
        Some((offset, length)) => (offset.trim(), Some(length.trim())),
        None => (spec.trim(), None),
    };
    let offset: i64 = offset.parse().ok()?;
    let count = i64::try_from(characters.len()).ok()?;
    let start = if offset < 0 {
        (count + offset).max(0)
    } else {
        offset.min(count)
    };
    let end = match length {
        Some(length) => {
            let length: i64 = length.parse().ok()?;
            if length < 0 {
                (count + length).max(start)
            } else {
                (start + length).min(count)
            }
        }
        None => count,
    };
    let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    Some(characters[start..end].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_bash_forms() {
        let v = vars(&[("app", "podinfo"), ("empty", ""), ("ver", "v1.2.3")]);
        let cases = [
            ("${app}", "podinfo"),
            ("x-${app}-y", "x-podinfo-y"),
            ("${missing:=def}", "def"),
            ("${empty:=def}", "def"),
            ("${empty=def}", ""),
            ("${missing:-d}", "d"),
            ("${missing:=${app}}", "podinfo"),
            ("${#app}", "7"),
            ("${app^}", "Podinfo"),
            ("${app^^}", "PODINFO"),
            ("${app:0:3}", "pod"),
            ("${app:3}", "info"),
            ("${ver#v}", "1.2.3"),
            ("${ver%.3}", "v1.2"),
            ("${ver/./-}", "v1-2.3"),
            ("${ver//./-}", "v1-2-3"),
            ("$${app}", "${app}"),
            ("price $5", "price $5"),
        ];
        for (input, expected) in cases {
            assert_eq!(expand(input, &v, true, "x").unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn strict_mode_fails_on_undefined_and_lax_mode_empties() {
        let v = vars(&[]);
        let error = expand("${nope}", &v, true, "ConfigMap/ns/a").unwrap_err();
        assert!(error.to_string().contains("\"nope\""), "{error}");
        assert!(error.to_string().contains("ConfigMap/ns/a"), "{error}");
        assert_eq!(expand("a${nope}b", &v, false, "x").unwrap(), "ab");
    }

    #[test]
    fn retypes_and_honours_opt_out() {
        let mut objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
                   "spec": {"replicas": "${n}", "on": "${flag}", "label": "v-${n}"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "b", "annotations": {SUBSTITUTE: "Disabled"}},
                   "data": {"x": "${n}"}}),
        ];
        substitute_all(&mut objects, &vars(&[("n", "3"), ("flag", "true")]), true).unwrap();
        assert_eq!(objects[0]["spec"]["replicas"], json!(3));
        assert_eq!(objects[0]["spec"]["on"], json!(true));
        assert_eq!(objects[0]["spec"]["label"], json!("v-3"));
        assert_eq!(objects[1]["data"]["x"], json!("${n}"));
    }

    #[test]
    fn validates_names() {
        assert!(validate_names(&vars(&[("ok_1", "")])).is_ok());
        assert!(validate_names(&vars(&[("1bad", "")])).is_err());
        assert!(validate_names(&vars(&[("a-b", "")])).is_err());
    }
}
