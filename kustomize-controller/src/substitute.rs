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

/// Longest string one `${...}` expression or one substituted field may produce.
const MAX_FIELD_OUTPUT: usize = 1 << 20;
/// Most bytes substitution may produce over one build, nested expressions included.
const MAX_TOTAL_OUTPUT: usize = 64 << 20;
/// Deepest nesting of `${...}` inside the words of other expressions.
const MAX_NESTING: usize = 10;

/// Substitution failed. Messages name the object and field, never a value (which may be a
/// decrypted secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error(
        "variable name {0:?} is invalid; names must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$"
    )]
    InvalidName(String),
    #[error(
        "{subject} field {field}: variable not set (strict mode): {name:?}; define it in spec.postBuild or give it a default with ${{{name}:=value}}"
    )]
    Undefined {
        subject: String,
        field: String,
        name: String,
    },
    #[error("{subject} field {field}: {reason}")]
    Syntax {
        subject: String,
        field: String,
        reason: &'static str,
    },
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
    let mut expander = Expander::new(variables, strict);
    for object in objects.iter_mut() {
        if has_flag(object, SUBSTITUTE, DISABLED) {
            continue;
        }
        expander.subject = subject(object);
        expander.field.clear();
        expander.substitute_value(object)?;
    }
    Ok(())
}

/// Expands expressions within the budgets of one build, tracking where it is for errors.
struct Expander<'a> {
    variables: &'a BTreeMap<String, String>,
    strict: bool,
    subject: String,
    field: String,
    remaining: usize,
}

impl<'a> Expander<'a> {
    fn new(variables: &'a BTreeMap<String, String>, strict: bool) -> Self {
        Self {
            variables,
            strict,
            subject: String::new(),
            field: String::new(),
            remaining: MAX_TOTAL_OUTPUT,
        }
    }

    fn substitute_value(&mut self, value: &mut Value) -> Result<(), SubstituteError> {
        let length = self.field.len();
        match value {
            Value::String(text) if text.contains('$') => {
                let replaced = self.expand(text, 0)?;
                if replaced != *text {
                    *value = retype(replaced);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.field.push_str(&format!("[{index}]"));
                    self.substitute_value(item)?;
                    self.field.truncate(length);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if !self.field.is_empty() {
                        self.field.push('.');
                    }
                    self.field.push_str(key);
                    self.substitute_value(item)?;
                    self.field.truncate(length);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn syntax(&self, reason: &'static str) -> SubstituteError {
        SubstituteError::Syntax {
            subject: self.subject.clone(),
            field: self.field.clone(),
            reason,
        }
    }

    /// Counts `length` produced bytes against the field and build budgets.
    fn charge(&mut self, length: usize) -> Result<(), SubstituteError> {
        if length > MAX_FIELD_OUTPUT {
            return Err(
                self.syntax("substitution would produce more than 1 MiB; simplify the expression")
            );
        }
        self.remaining = self.remaining.checked_sub(length).ok_or_else(|| {
            self.syntax(
                "substitution produced more than 64 MiB in this build; simplify the expressions",
            )
        })?;
        Ok(())
    }

    /// Expands `${...}` expressions in `text`; `$${` escapes to a literal `${`.
    fn expand(&mut self, text: &str, depth: usize) -> Result<String, SubstituteError> {
        if depth > MAX_NESTING {
            return Err(self.syntax("variable expressions nested more than 10 levels deep"));
        }
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
            let Some(length) = closing_brace(&after[2..]) else {
                return Err(self.syntax("unclosed variable expression"));
            };
            let value = self.evaluate(&after[2..2 + length], depth)?;
            self.charge(output.len().saturating_add(value.len()))?;
            output.push_str(&value);
            rest = &after[2 + length + 1..];
        }
        output.push_str(rest);
        Ok(output)
    }

    fn evaluate(&mut self, body: &str, depth: usize) -> Result<String, SubstituteError> {
        if let Some(name) = body.strip_prefix('#')
            && VARIABLE_NAME.is_match(name)
        {
            return Ok(self.lookup(name)?.chars().count().to_string());
        }
        let name_length = body
            .char_indices()
            .find(|(_, character)| !(character.is_ascii_alphanumeric() || *character == '_'))
            .map_or(body.len(), |(index, _)| index);
        let (name, operator) = body.split_at(name_length);
        if !VARIABLE_NAME.is_match(name) {
            return Err(self.syntax("invalid variable expression"));
        }
        let variables = self.variables;
        for (prefix, use_empty) in [(":=", true), (":-", true), ("=", false), ("-", false)] {
            if let Some(word) = operator.strip_prefix(prefix) {
                return match variables.get(name) {
                    Some(value) if !(use_empty && value.is_empty()) => Ok(value.clone()),
                    _ => self.expand(word, depth + 1),
                };
            }
        }
        let value = self.lookup(name)?;
        match operator {
            "" => Ok(value.to_owned()),
            "^" => Ok(capitalize(value, true)),
            "^^" => Ok(value.to_uppercase()),
            "," => Ok(capitalize(value, false)),
            ",," => Ok(value.to_lowercase()),
            _ => self.operate(value, operator, depth),
        }
    }

    /// The pattern operators: prefix and suffix trims, replacements and substrings.
    fn operate(
        &mut self,
        value: &str,
        operator: &str,
        depth: usize,
    ) -> Result<String, SubstituteError> {
        for prefix in ["##", "#"] {
            if let Some(pattern) = operator.strip_prefix(prefix) {
                return Ok(trim_prefix(value, &self.expand(pattern, depth + 1)?));
            }
        }
        for suffix in ["%%", "%"] {
            if let Some(pattern) = operator.strip_prefix(suffix) {
                return Ok(trim_suffix(value, &self.expand(pattern, depth + 1)?));
            }
        }
        for (prefix, all) in [("//", true), ("/", false)] {
            if let Some(spec) = operator.strip_prefix(prefix) {
                let (from, to) = spec.split_once('/').unwrap_or((spec, ""));
                let from = self.expand(from, depth + 1)?;
                let to = self.expand(to, depth + 1)?;
                return self.replace(value, &from, &to, all);
            }
        }
        if let Some(spec) = operator.strip_prefix(':') {
            return substring(value, spec)
                .ok_or_else(|| self.syntax("invalid substring expression"));
        }
        Err(self.syntax("unsupported variable expression"))
    }

    /// Replaces the first or every `from` in `value`, refusing before allocating an oversized
    /// result; an empty pattern changes nothing, as in bash.
    fn replace(
        &mut self,
        value: &str,
        from: &str,
        to: &str,
        all: bool,
    ) -> Result<String, SubstituteError> {
        if from.is_empty() {
            return Ok(value.to_owned());
        }
        let matches = if all {
            value.matches(from).count()
        } else {
            usize::from(value.contains(from))
        };
        let length = value.len().saturating_add(matches.saturating_mul(to.len()));
        self.charge(length)?;
        Ok(if all {
            value.replace(from, to)
        } else {
            value.replacen(from, to, 1)
        })
    }

    fn lookup(&self, name: &str) -> Result<&'a str, SubstituteError> {
        match self.variables.get(name) {
            Some(value) => Ok(value),
            None if self.strict => Err(SubstituteError::Undefined {
                subject: self.subject.clone(),
                field: self.field.clone(),
                name: name.to_owned(),
            }),
            None => Ok(""),
        }
    }
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

    fn expand(
        text: &str,
        variables: &BTreeMap<String, String>,
        strict: bool,
        subject: &str,
    ) -> Result<String, SubstituteError> {
        let mut expander = Expander::new(variables, strict);
        expander.subject = subject.to_owned();
        expander.expand(text, 0)
    }

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
    fn nested_replacements_are_capped_in_size_and_depth() {
        let v = vars(&[("v", &"a".repeat(64))]);
        let mut bomb = "${v//a/${v}}".to_owned();
        for _ in 0..4 {
            bomb = format!("${{v//a/{bomb}}}");
        }
        let error = expand(&bomb, &v, true, "ConfigMap/ns/a").unwrap_err();
        assert!(error.to_string().contains("more than 1 MiB"), "{error}");
        let deep = (0..12).fold("x".to_owned(), |word, _| format!("${{u:-{word}}}"));
        let error = expand(&deep, &v, true, "ConfigMap/ns/a").unwrap_err();
        assert!(error.to_string().contains("nested"), "{error}");
        assert_eq!(expand("${v//a/}", &v, true, "x").unwrap(), "");
        assert_eq!(expand("${v///b}", &v, true, "x").unwrap(), "a".repeat(64));
    }

    #[test]
    fn a_build_has_one_output_budget() {
        let v = vars(&[("big", &"b".repeat(900 << 10))]);
        let mut objects: Vec<Value> = (0..100)
            .map(|i| json!({"kind": "ConfigMap", "metadata": {"name": format!("c{i}")}, "data": {"x": "${big}"}}))
            .collect();
        let error = substitute_all(&mut objects, &v, true).unwrap_err();
        assert!(error.to_string().contains("64 MiB"), "{error}");
    }

    #[test]
    fn errors_name_the_field_never_the_value() {
        let secret = "hunter2-${not closed";
        let mut objects = vec![json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"},
            "stringData": {"list": ["ok", secret]}})];
        let error = substitute_all(&mut objects, &vars(&[]), true).unwrap_err();
        let message = error.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("stringData.list[1]"), "{message}");
        assert!(message.contains("unclosed"), "{message}");
        for body in [
            "${a!hunter2}",
            "${-hunter2}",
            "${a:hunter2}",
            "${a@hunter2}",
        ] {
            let mut objects = vec![json!({"kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"k": body}})];
            let vars = vars(&[("a", "1")]);
            let message = substitute_all(&mut objects, &vars, true)
                .unwrap_err()
                .to_string();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains("data.k"), "{message}");
        }
    }

    #[test]
    fn validates_names() {
        assert!(validate_names(&vars(&[("ok_1", "")])).is_ok());
        assert!(validate_names(&vars(&[("1bad", "")])).is_err());
        assert!(validate_names(&vars(&[("a-b", "")])).is_err());
    }
}
