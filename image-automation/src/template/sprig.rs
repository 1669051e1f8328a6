//! The Sprig string and list functions Flux offers in commit message templates
//! (`sprig.HermeticTxtFuncMap`), as Sprig defines them: the piped value comes last.

use std::sync::Arc;

use gotmpl::{FuncMap, TemplateError, Value, ValueFunc};

type Function = fn(&[Value]) -> Result<Value, TemplateError>;

/// Every function this module provides, by its Sprig name.
pub fn functions() -> FuncMap {
    let table: &[(&str, Function)] = &[
        ("upper", |a| unary(a, "upper", str::to_uppercase)),
        ("lower", |a| unary(a, "lower", str::to_lowercase)),
        ("title", |a| unary(a, "title", title)),
        ("trim", |a| unary(a, "trim", |s| s.trim().to_owned())),
        ("nospace", |a| {
            unary(a, "nospace", |s| s.split_whitespace().collect())
        }),
        ("toString", |a| unary(a, "toString", str::to_owned)),
        ("trimAll", |a| {
            binary(a, "trimAll", |cut, s| trim_all(s, cut))
        }),
        ("trimPrefix", |a| {
            binary(a, "trimPrefix", |p, s| {
                s.strip_prefix(p).unwrap_or(s).to_owned()
            })
        }),
        ("trimSuffix", |a| {
            binary(a, "trimSuffix", |p, s| {
                s.strip_suffix(p).unwrap_or(s).to_owned()
            })
        }),
        ("contains", |a| {
            predicate(a, "contains", |needle, s| s.contains(needle))
        }),
        ("hasPrefix", |a| {
            predicate(a, "hasPrefix", |p, s| s.starts_with(p))
        }),
        ("hasSuffix", |a| {
            predicate(a, "hasSuffix", |p, s| s.ends_with(p))
        }),
        ("replace", replace),
        ("trunc", trunc),
        ("repeat", repeat),
        ("indent", |a| indent(a, "indent", false)),
        ("nindent", |a| indent(a, "nindent", true)),
        ("quote", |a| Ok(quoted(a, '"'))),
        ("squote", |a| Ok(quoted(a, '\''))),
        ("cat", cat),
        ("join", join),
        ("splitList", split_list),
        ("list", |a| Ok(Value::from(a.to_vec()))),
        ("first", |a| element(a, "first", |items| items.first())),
        ("last", |a| element(a, "last", |items| items.last())),
        ("sortAlpha", sort_alpha),
        ("uniq", uniq),
        ("has", has),
        ("default", default),
        ("empty", |a| {
            argument(a, "empty", 0).map(|v| Value::Bool(!v.is_truthy()))
        }),
        ("coalesce", |a| {
            Ok(a.iter()
                .find(|v| v.is_truthy())
                .cloned()
                .unwrap_or(Value::Nil))
        }),
        ("ternary", ternary),
    ];
    table
        .iter()
        .map(|(name, function)| {
            let function = *function;
            let value: ValueFunc = Arc::new(move |args: &[Value]| function(args));
            ((*name).to_owned(), value)
        })
        .collect()
}

fn argument<'a>(args: &'a [Value], name: &str, at: usize) -> Result<&'a Value, TemplateError> {
    args.get(at).ok_or_else(|| TemplateError::ArgCount {
        name: name.to_owned(),
        expected: at + 1,
        got: args.len(),
    })
}

/// A value as Sprig's `toString` renders it.
fn text(value: &Value) -> String {
    match value {
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn integer(value: &Value, name: &str) -> Result<i64, TemplateError> {
    value
        .as_int()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| TemplateError::Exec(format!("{name}: expected an integer, got {value}")))
}

fn unary(args: &[Value], name: &str, f: impl Fn(&str) -> String) -> Result<Value, TemplateError> {
    Ok(Value::from(f(&text(argument(args, name, 0)?))))
}

fn binary(
    args: &[Value],
    name: &str,
    f: impl Fn(&str, &str) -> String,
) -> Result<Value, TemplateError> {
    let (first, second) = (
        text(argument(args, name, 0)?),
        text(argument(args, name, 1)?),
    );
    Ok(Value::from(f(&first, &second)))
}

fn predicate(
    args: &[Value],
    name: &str,
    f: impl Fn(&str, &str) -> bool,
) -> Result<Value, TemplateError> {
    let (first, second) = (
        text(argument(args, name, 0)?),
        text(argument(args, name, 1)?),
    );
    Ok(Value::Bool(f(&first, &second)))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if at_word_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !c.is_alphanumeric() && c != '_' && c != '\'';
    }
    out
}

fn trim_all(s: &str, cutset: &str) -> String {
    s.trim_matches(|c| cutset.contains(c)).to_owned()
}

fn replace(args: &[Value]) -> Result<Value, TemplateError> {
    let old = text(argument(args, "replace", 0)?);
    let new = text(argument(args, "replace", 1)?);
    Ok(Value::from(
        text(argument(args, "replace", 2)?).replace(&old, &new),
    ))
}

/// `trunc n s`: the first `n` characters, or the last `-n` when negative.
fn trunc(args: &[Value]) -> Result<Value, TemplateError> {
    let n = integer(argument(args, "trunc", 0)?, "trunc")?;
    let s: Vec<char> = text(argument(args, "trunc", 1)?).chars().collect();
    let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
    let kept: String = match n {
        n if n >= 0 => s
            .iter()
            .take(usize::try_from(n.min(len)).unwrap_or(0))
            .collect(),
        n => s
            .iter()
            .skip(usize::try_from((len + n).max(0)).unwrap_or(0))
            .collect(),
    };
    Ok(Value::from(kept))
}

fn repeat(args: &[Value]) -> Result<Value, TemplateError> {
    let count = integer(argument(args, "repeat", 0)?, "repeat")?;
    let s = text(argument(args, "repeat", 1)?);
    let count = usize::try_from(count).unwrap_or(0);
    if s.len().saturating_mul(count) > 1 << 20 {
        return Err(TemplateError::Exec(
            "repeat: result larger than 1 MiB".to_owned(),
        ));
    }
    Ok(Value::from(s.repeat(count)))
}

fn indent(args: &[Value], name: &str, newline: bool) -> Result<Value, TemplateError> {
    let width = usize::try_from(integer(argument(args, name, 0)?, name)?).unwrap_or(0);
    let pad = " ".repeat(width.min(1024));
    let body = text(argument(args, name, 1)?).replace('\n', &format!("\n{pad}"));
    let lead = if newline { "\n" } else { "" };
    Ok(Value::from(format!("{lead}{pad}{body}")))
}

fn quoted(args: &[Value], mark: char) -> Value {
    let parts: Vec<String> = args
        .iter()
        .filter(|value| !matches!(value, Value::Nil))
        .map(|value| match mark {
            '"' => format!("{:?}", text(value)),
            _ => format!("'{}'", text(value)),
        })
        .collect();
    Value::from(parts.join(" "))
}

fn cat(args: &[Value]) -> Result<Value, TemplateError> {
    let parts: Vec<String> = args
        .iter()
        .filter(|value| !matches!(value, Value::Nil))
        .map(text)
        .collect();
    Ok(Value::from(parts.join(" ")))
}

fn items<'a>(value: &'a Value, name: &str) -> Result<&'a [Value], TemplateError> {
    match value {
        Value::List(items) => Ok(items),
        other => Err(TemplateError::Exec(format!(
            "{name}: expected a list, got {}",
            other.type_name()
        ))),
    }
}

fn join(args: &[Value]) -> Result<Value, TemplateError> {
    let separator = text(argument(args, "join", 0)?);
    let parts: Vec<String> = match argument(args, "join", 1)? {
        Value::List(values) => values.iter().map(text).collect(),
        other => vec![text(other)],
    };
    Ok(Value::from(parts.join(&separator)))
}

fn split_list(args: &[Value]) -> Result<Value, TemplateError> {
    let separator = text(argument(args, "splitList", 0)?);
    let s = text(argument(args, "splitList", 1)?);
    Ok(Value::from(
        s.split(separator.as_str())
            .map(Value::from)
            .collect::<Vec<_>>(),
    ))
}

fn element(
    args: &[Value],
    name: &str,
    pick: impl Fn(&[Value]) -> Option<&Value>,
) -> Result<Value, TemplateError> {
    Ok(pick(items(argument(args, name, 0)?, name)?)
        .cloned()
        .unwrap_or(Value::Nil))
}

fn sort_alpha(args: &[Value]) -> Result<Value, TemplateError> {
    let mut strings: Vec<String> = items(argument(args, "sortAlpha", 0)?, "sortAlpha")?
        .iter()
        .map(text)
        .collect();
    strings.sort();
    Ok(Value::from(
        strings.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

fn uniq(args: &[Value]) -> Result<Value, TemplateError> {
    let mut seen: Vec<String> = Vec::new();
    let mut unique = Vec::new();
    for value in items(argument(args, "uniq", 0)?, "uniq")? {
        let key = text(value);
        if !seen.contains(&key) {
            seen.push(key);
            unique.push(value.clone());
        }
    }
    Ok(Value::from(unique))
}

fn has(args: &[Value]) -> Result<Value, TemplateError> {
    let needle = text(argument(args, "has", 0)?);
    let found = items(argument(args, "has", 1)?, "has")?
        .iter()
        .any(|value| text(value) == needle);
    Ok(Value::Bool(found))
}

/// `default fallback value`: `value` when it is set and not empty.
fn default(args: &[Value]) -> Result<Value, TemplateError> {
    let fallback = argument(args, "default", 0)?;
    Ok(match args.get(1) {
        Some(value) if value.is_truthy() => value.clone(),
        _ => fallback.clone(),
    })
}

fn ternary(args: &[Value]) -> Result<Value, TemplateError> {
    let condition = argument(args, "ternary", 2)?.is_truthy();
    argument(args, "ternary", if condition { 0 } else { 1 }).cloned()
}
