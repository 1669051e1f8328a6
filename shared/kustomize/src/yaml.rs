//! YAML reading with kustomize's value semantics, and YAML output.
//!
//! Kustomize reads YAML with go-yaml v3 and prints objects through JSON, so a plain `0123` is the
//! octal number 83, `yes` stays a string, `1e3` prints as `1000`, and a date becomes an RFC 3339
//! timestamp. Anchors, aliases and `<<` merge keys are expanded while reading.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted, well below what recursive processing can handle.
const MAX_DEPTH: usize = 200;
/// Most nodes one stream may produce, counting every alias expansion (guards against alias bombs).
const MAX_NODES: usize = 2_000_000;
/// Most scalar bytes aliases may add on top of the stream's own size (each alias copies its value).
const MAX_ALIAS_BYTES: usize = 64 << 20;

/// A YAML syntax or value error with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Which YAML reader's rules apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// go-yaml v3, which kustomize uses for resources and patches (`yes` is a string).
    #[default]
    V3,
    /// go-yaml v2 through `sigs.k8s.io/yaml`, which kustomize uses for kustomization files,
    /// replacement files and YAML JSON patches: `yes`, `on`, `y` are booleans and non-string
    /// keys become strings.
    V2,
}

/// Parses every document of a YAML stream; an empty document reads as `Value::Null`.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    parse_documents_as(text, Dialect::V3)
}

/// Parses every document of a YAML stream with the given dialect's scalar rules.
pub(crate) fn parse_documents_as(text: &str, dialect: Dialect) -> Result<Vec<Value>, YamlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder {
        dialect,
        max_bytes: text.len().saturating_add(MAX_ALIAS_BYTES),
        ..Builder::default()
    };
    let mut documents = Vec::new();
    let unbroken_end = unbroken_end(text);
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let at = |message: String| YamlError {
            line: span.start.line(),
            column: span.start.col() + 1,
            message,
        };
        match event {
            Event::DocumentStart(_, Some(version)) if (version.major, version.minor) != (1, 1) => {
                return Err(at(format!(
                    "found incompatible YAML document (version {}.{}; only 1.1 is accepted)",
                    version.major, version.minor
                )));
            }
            Event::DocumentStart(..) => builder.root = None,
            Event::Scalar(value, style, anchor, tag)
                if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && unbroken_end.is_some_and(|end| span.end.index() >= end) =>
            {
                // go-yaml adds no line break the input does not have.
                let value = value.strip_suffix('\n').unwrap_or(&value).to_string();
                builder
                    .event(Event::Scalar(value.into(), style, anchor, tag))
                    .map_err(at)?
            }
            Event::DocumentEnd => documents.push(builder.root.take().unwrap_or(Value::Null)),
            other => builder.event(other).map_err(at)?,
        }
    }
    Ok(documents)
}

/// The stream's length in characters when its last line has no line break: a block scalar
/// reaching it ends without one.
fn unbroken_end(text: &str) -> Option<usize> {
    (!text.trim_end_matches([' ', '\t']).ends_with('\n')).then(|| text.chars().count())
}

/// Parses a stream that must hold exactly one document.
pub fn parse_single(text: &str) -> Result<Value, YamlError> {
    parse_single_as(text, Dialect::V3)
}

/// Parses a stream that must hold exactly one document, with the given dialect.
pub(crate) fn parse_single_as(text: &str, dialect: Dialect) -> Result<Value, YamlError> {
    let mut documents = parse_documents_as(text, dialect)?;
    match documents.len() {
        0 => Ok(Value::Null),
        1 => Ok(documents.remove(0)),
        n => Err(YamlError {
            line: 1,
            column: 1,
            message: format!("expected one YAML document, found {n}"),
        }),
    }
}

/// Renders objects as a multi-document YAML stream.
pub fn render(objects: &[Value]) -> String {
    let mut out = String::new();
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match serde_saphyr::to_string(object) {
            Ok(text) => out.push_str(&text),
            Err(_) => out.push_str(&object.to_string()),
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// A node under construction: a finished value, or a `<<` merge key awaiting its value.
enum Node {
    Value(Value),
    MergeKey,
}

enum Frame {
    Sequence {
        items: Vec<Value>,
        anchor: usize,
        size: Size,
    },
    Mapping {
        entries: Map<String, Value>,
        key: Option<PendingKey>,
        merges: Vec<Value>,
        anchor: usize,
        size: Size,
    },
}

/// What a node expands to: its nodes and its scalar bytes, aliases included.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    const NODE: Size = Size { nodes: 1, bytes: 0 };

    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

enum PendingKey {
    Field(String),
    Merge,
}

#[derive(Default)]
struct Builder {
    dialect: Dialect,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, Size)>,
    root: Option<Value>,
    total: Size,
    max_bytes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>) -> Result<(), String> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let in_key_position =
                    matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }));
                let node = if in_key_position
                    && style == ScalarStyle::Plain
                    && tag.is_none()
                    && text == "<<"
                {
                    Node::MergeKey
                } else {
                    let key = in_key_position.then_some(self.dialect);
                    Node::Value(scalar_value(
                        &text,
                        style,
                        tag.as_deref(),
                        key,
                        self.dialect,
                    )?)
                };
                let size = Size {
                    nodes: 1,
                    bytes: text.len(),
                };
                if let Node::Value(value) = &node
                    && anchor != 0
                {
                    self.anchors.insert(anchor, (value.clone(), size));
                }
                self.finish(node, size)
            }
            Event::SequenceStart(_, anchor, _) => self.open(Frame::Sequence {
                items: Vec::new(),
                anchor,
                size: Size::NODE,
            }),
            Event::MappingStart(_, anchor, _) => self.open(Frame::Mapping {
                entries: Map::new(),
                key: None,
                merges: Vec::new(),
                anchor,
                size: Size::NODE,
            }),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => {
                let Some(&(_, size)) = self.anchors.get(&id) else {
                    return Err("alias to an unknown anchor".to_string());
                };
                // Checked before cloning, so an alias bomb fails before it allocates.
                self.charge(size)?;
                let value = self.anchors.get(&id).map(|(value, _)| value.clone());
                self.attach(Node::Value(value.unwrap_or(Value::Null)), size)
            }
            Event::UnresolvedAlias(name) => Err(format!("alias to an unknown anchor `{name}`")),
            _ => Ok(()),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        if let Some(Frame::Mapping { key: None, .. }) = self.stack.last() {
            return Err("a mapping key must be a string".to_string());
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let Some(frame) = self.stack.pop() else {
            return Err("unbalanced collection end".to_string());
        };
        let (value, anchor, size) = match frame {
            Frame::Sequence {
                items,
                anchor,
                size,
            } => (Value::Array(items), anchor, size),
            Frame::Mapping {
                mut entries,
                merges,
                anchor,
                size,
                ..
            } => {
                for source in merges {
                    let Value::Object(source) = source else {
                        return Err(
                            "a `<<` merge needs a mapping or a list of mappings".to_string()
                        );
                    };
                    for (key, value) in source {
                        entries.entry(key).or_insert(value);
                    }
                }
                (Value::Object(entries), anchor, size)
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        // Its children were charged as they arrived; only the collection's own node remains.
        self.charge(Size::NODE)?;
        self.attach(Node::Value(value), size)
    }

    /// Counts a node's expansion against the stream's budgets of nodes and scalar bytes.
    fn charge(&mut self, size: Size) -> Result<(), String> {
        self.total.add(size);
        if self.total.nodes > MAX_NODES {
            return Err(format!(
                "more than {MAX_NODES} nodes after expanding aliases"
            ));
        }
        if self.total.bytes > self.max_bytes {
            return Err(format!(
                "more than {} bytes of values after expanding aliases",
                self.max_bytes
            ));
        }
        Ok(())
    }

    /// Charges a new scalar and attaches it.
    fn finish(&mut self, node: Node, size: Size) -> Result<(), String> {
        self.charge(size)?;
        self.attach(node, size)
    }

    /// Attaches a finished node to its parent collection, or makes it the document root.
    fn attach(&mut self, node: Node, size: Size) -> Result<(), String> {
        let Some(parent) = self.stack.last_mut() else {
            return match node {
                Node::Value(value) => {
                    self.root = Some(value);
                    Ok(())
                }
                Node::MergeKey => Err("unexpected `<<`".to_string()),
            };
        };
        match parent {
            Frame::Sequence {
                items, size: total, ..
            } => {
                total.add(size);
                match node {
                    Node::Value(value) => items.push(value),
                    Node::MergeKey => items.push(Value::String("<<".to_string())),
                }
            }
            Frame::Mapping {
                entries,
                key,
                merges,
                size: total,
                ..
            } => {
                total.add(size);
                match (key.take(), node) {
                    (None, Node::MergeKey) => {
                        if !merges.is_empty() {
                            return Err("duplicate `<<` merge key".to_string());
                        }
                        *key = Some(PendingKey::Merge);
                    }
                    (None, Node::Value(Value::String(name))) => {
                        if entries.contains_key(&name) {
                            return Err(format!("mapping key \"{name}\" already defined"));
                        }
                        *key = Some(PendingKey::Field(name));
                    }
                    (None, Node::Value(_)) => {
                        return Err("a mapping key must be a string".to_string());
                    }
                    (Some(PendingKey::Field(name)), Node::Value(value)) => {
                        entries.insert(name, value);
                    }
                    (Some(PendingKey::Merge), Node::Value(value)) => match value {
                        Value::Array(sources) => {
                            if sources.iter().any(|s| !s.is_object()) {
                                return Err("a `<<` merge list must hold only mappings".to_string());
                            }
                            merges.extend(sources);
                        }
                        Value::Object(_) => merges.push(value),
                        _ => {
                            return Err(
                                "a `<<` merge needs a mapping or a list of mappings".to_string()
                            );
                        }
                    },
                    (Some(_), Node::MergeKey) => {
                        return Err("unexpected `<<` as a value".to_string());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The value of a scalar, following go-yaml's tag resolution; `key` is set for mapping keys
/// (v3 refuses non-string keys, v2 turns them into strings).
fn scalar_value(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    key: Option<Dialect>,
    dialect: Dialect,
) -> Result<Value, String> {
    // The non-specific tag `!` changes nothing in kustomize's output.
    let tag = tag.filter(|t| !(t.handle().is_empty() && t.suffix() == "!"));
    let resolved = match tag {
        Some(tag) => return tagged_scalar(text, tag, dialect),
        None if style != ScalarStyle::Plain => Resolved::Str,
        None => resolve_plain(text, dialect),
    };
    match (resolved, key) {
        (Resolved::Str, _) => Ok(Value::String(text.to_string())),
        (_, Some(Dialect::V3)) => Err(format!("a mapping key must be a string, found `{text}`")),
        (other, Some(Dialect::V2)) => Ok(Value::String(match other.into_value(text)? {
            Value::Null => "null".to_string(),
            Value::String(s) => s,
            value => value.to_string(),
        })),
        (other, None) => other.into_value(text),
    }
}

/// A `!!binary` scalar reads as its decoded bytes (line breaks ignored), invalid UTF-8 replaced
/// like Go's JSON encoding does.
fn binary_scalar(text: &str) -> Result<Value, String> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "!!binary value contains invalid base64 data".to_string())?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

fn tagged_scalar(text: &str, tag: &Tag, dialect: Dialect) -> Result<Value, String> {
    let name = tag.suffix_in_namespace("tag:yaml.org,2002:");
    let resolved = match name.as_deref() {
        Some("str") => return Ok(Value::String(text.to_string())),
        Some("null") => return Ok(Value::Null),
        Some("bool") => match resolve_plain(text, dialect) {
            Resolved::Bool(b) => Resolved::Bool(b),
            _ => return Err(format!("`{text}` is not a !!bool")),
        },
        Some("int") => match resolve_plain(text, dialect) {
            r @ (Resolved::Int(_) | Resolved::Uint(_)) => r,
            _ => return Err(format!("`{text}` is not an !!int")),
        },
        Some("float") => match resolve_plain(text, dialect) {
            Resolved::Int(i) => Resolved::Float(i as f64),
            Resolved::Uint(u) => Resolved::Float(u as f64),
            r @ (Resolved::Float(_) | Resolved::NonFinite) => r,
            _ => return Err(format!("`{text}` is not a !!float")),
        },
        Some("timestamp") => match resolve_plain(text, dialect) {
            r @ Resolved::Timestamp(_) => r,
            _ => return Err(format!("`{text}` is not a !!timestamp")),
        },
        Some("binary") => return binary_scalar(text),
        Some("map") | Some("seq") => {
            return Err(format!(
                "a scalar cannot carry the tag !!{}",
                name.unwrap_or_default()
            ));
        }
        _ => return Ok(Value::String(text.to_string())),
    };
    resolved.into_value(text)
}

/// True when `text` written as a plain (untagged) scalar reads back as a string. kustomize writes
/// the keys it adds (labels, annotations, generated data) untagged, and fails on output when such
/// a key reads as a number, boolean, null or timestamp.
pub(crate) fn is_plain_string(text: &str) -> bool {
    resolve_plain(text, Dialect::V3) == Resolved::Str
}

/// What a plain scalar means under go-yaml v3.
#[derive(Debug, PartialEq)]
enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    NonFinite,
    Timestamp(String),
    Str,
}

impl Resolved {
    fn into_value(self, text: &str) -> Result<Value, String> {
        Ok(match self {
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int(i) => Value::Number(i.into()),
            Resolved::Uint(u) => Value::Number(u.into()),
            Resolved::Float(f) => float_value(f),
            Resolved::NonFinite => {
                return Err(format!(
                    "unsupported value `{text}`: infinite or NaN numbers have no JSON form"
                ));
            }
            Resolved::Timestamp(s) => Value::String(s),
            Resolved::Str => Value::String(text.to_string()),
        })
    }
}

fn resolve_plain(text: &str, dialect: Dialect) -> Resolved {
    if dialect == Dialect::V2 {
        match text {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Resolved::Bool(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Resolved::Bool(false),
            _ => {}
        }
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => return Resolved::NonFinite,
        _ => {}
    }
    let Some(first) = text.bytes().next() else {
        return Resolved::Str;
    };
    match first {
        b'.' => match text.parse::<f64>() {
            Ok(f) if f.is_finite() && is_decimal_float(text) => Resolved::Float(f),
            _ => Resolved::Str,
        },
        b'0'..=b'9' | b'+' | b'-' => {
            if let Some(timestamp) = parse_timestamp(text) {
                return Resolved::Timestamp(timestamp);
            }
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            if let Some(i) = parse_go_int(&plain) {
                return Resolved::Int(i);
            }
            if let Some(u) = parse_go_uint(&plain) {
                return Resolved::Uint(u);
            }
            if is_decimal_float(&plain)
                && let Ok(f) = plain.parse::<f64>()
                && f.is_finite()
            {
                return Resolved::Float(f);
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// go-yaml's float syntax: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_decimal_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, then `0x`/`0o`/`0b` prefixes or a leading-zero octal.
fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_go_uint(digits)?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some((magnitude as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: no sign allowed.
fn parse_go_uint(s: &str) -> Option<u64> {
    let lower = s.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &s[2..]),
        Some("0o") => (8, &s[2..]),
        Some("0b") => (2, &s[2..]),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A float as kustomize prints it: integral values below 1e21 print without a fraction.
pub fn float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f >= i64::MIN as f64 && f < i64::MAX as f64 {
            return Value::Number((f as i64).into());
        }
        if f >= 0.0 && f < u64::MAX as f64 {
            return Value::Number((f as u64).into());
        }
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A go-yaml timestamp (`2006-1-2`, with an optional `T`/`t`/space time part) as RFC 3339.
fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut cursor = Cursor { s: b, i: 5 };
    let year: u32 = s[..4].parse().ok()?;
    let month = cursor.number(1, 2)?;
    cursor.expect(b'-')?;
    let day = cursor.number(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if cursor.done() {
        return Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"));
    }
    let separator = cursor.next()?;
    if !matches!(separator, b'T' | b't' | b' ') {
        return None;
    }
    let hour = cursor.number(1, 2)?;
    cursor.expect(b':')?;
    let minute = cursor.number(1, 2)?;
    cursor.expect(b':')?;
    let second = cursor.number(1, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut fraction = String::new();
    if cursor.peek() == Some(b'.') {
        cursor.i += 1;
        while let Some(d) = cursor.peek().filter(u8::is_ascii_digit) {
            fraction.push(char::from(d));
            cursor.i += 1;
        }
        if fraction.is_empty() {
            return None;
        }
        fraction.truncate(9);
        while fraction.ends_with('0') {
            fraction.pop();
        }
    }
    let zone = if separator == b' ' {
        "Z".to_string()
    } else {
        match cursor.next()? {
            b'Z' => "Z".to_string(),
            sign @ (b'+' | b'-') => {
                let hours = cursor.number(2, 2)?;
                cursor.expect(b':')?;
                let minutes = cursor.number(2, 2)?;
                if hours == 0 && minutes == 0 {
                    "Z".to_string()
                } else {
                    format!("{}{hours:02}:{minutes:02}", char::from(sign))
                }
            }
            _ => return None,
        }
    };
    if !cursor.done() {
        return None;
    }
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
    ))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i - start < max && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        parse_single(text).unwrap()
    }

    #[test]
    fn scalars_resolve_like_go_yaml_v3() {
        let v = one(
            "a: 0123\nb: yes\nc: 1e3\nd: 08\ne: 0b11\nf: +12\ng: 1_000\nh: 12345678901234567890\n\
             i: -0.0\nj: 0x_1F\nk: 2001-12-14\nl: .5\nm: 1.\nn: 0o8\no: ~\np:\nq: 1.5\nr: 1e21\ns: True\n",
        );
        assert_eq!(
            v,
            json!({"a": 83, "b": "yes", "c": 1000, "d": 8, "e": 3, "f": 12, "g": 1000,
                   "h": 12345678901234567890u64, "i": 0, "j": 31, "k": "2001-12-14T00:00:00Z", "l": 0.5,
                   "m": 1, "n": "0o8", "o": null, "p": null, "q": 1.5, "r": 1e21, "s": true})
        );
    }

    #[test]
    fn tags_and_quotes_override_resolution() {
        let v = one("a: !!str 12\nb: !!int \"12\"\nc: !foo bar\nd: !!float 3\ne: '0123'\n");
        assert_eq!(
            v,
            json!({"a": "12", "b": 12, "c": "bar", "d": 3, "e": "0123"})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let v = one("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n");
        assert_eq!(
            v,
            json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "list": [{"x": 1, "y": 2}]})
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse_documents("a: 1\na: 2\n").is_err());
        assert!(parse_documents("1: a\n").is_err());
        assert!(parse_documents("a: .inf\n").is_err());
        assert!(parse_documents("a: [\n").is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        assert!(parse_documents(&text).is_err());
    }

    #[test]
    fn block_scalars_on_a_last_line_without_a_line_break_get_none() {
        assert_eq!(one("a: |\n  héllo\n  wörld")["a"], "héllo\nwörld");
        assert_eq!(one("a: >\n  x\n  y")["a"], "x y");
        assert_eq!(one("a: |+\n  x\n\n  y")["a"], "x\n\ny");
        assert_eq!(one("a: |\n  x\n  ")["a"], "x\n");
        assert_eq!(one("a: |\n  x\nb: 1")["a"], "x\n");
        assert_eq!(one("a: |\n  x\n")["a"], "x\n");
    }

    #[test]
    fn many_block_scalars_without_a_final_line_break_parse_in_linear_time() {
        let text: Vec<String> = (0..5_000)
            .map(|i| format!("k{i}: |\n  line {i}\n  last"))
            .collect();
        let value = one(&text.join("\n"));
        assert_eq!(value["k0"], "line 0\nlast\n");
        assert_eq!(value["k4999"], "line 4999\nlast");
    }

    #[test]
    fn deep_alias_free_documents_count_each_node_once() {
        // 150 levels of nesting over 20,000 leaves: 3,000,000 nodes if each counted once per
        // ancestor, about 20,150 in fact (like a large CRD bundle's deep schemas).
        let mut text = String::new();
        for depth in 0..150 {
            text.push_str(&format!("{}l{depth}:\n", "  ".repeat(depth)));
        }
        let indent = "  ".repeat(150);
        for i in 0..20_000 {
            text.push_str(&format!("{indent}k{i}: v\n"));
        }
        let value = parse_single(&text).unwrap();
        let mut leaf = &value;
        for depth in 0..150 {
            leaf = &leaf[format!("l{depth}")];
        }
        assert_eq!(leaf.as_object().map(Map::len), Some(20_000));
        // Nested aliases still count every node they expand to: about 2,240,000 here.
        let list = |item: &str, n: usize| format!("[{}]", vec![item; n].join(", "));
        let nested_aliases = format!(
            "a: &a {}\nb: &b {}\nc: &c {}\nd: &d {}\ne: {}\n",
            list("x", 16),
            list("*a", 16),
            list("*b", 16),
            list("*c", 16),
            list("*d", 32)
        );
        let error = parse_documents(&nested_aliases).unwrap_err();
        assert!(error.message.contains("after expanding aliases"), "{error}");
    }

    #[test]
    fn aliases_to_large_values_are_refused_before_they_are_copied() {
        let big = "x".repeat(1 << 20);
        let mut text = format!("a: &big \"{big}\"\nrefs:\n");
        for _ in 0..100 {
            text.push_str("- *big\n");
        }
        let error = parse_documents(&text).unwrap_err();
        assert!(error.message.contains("bytes of values"), "{error}");
        let nested = format!("a: &big {{v: \"{big}\"}}\nrefs: [*big, *big, *big]\n");
        assert_eq!(
            parse_single(&nested).unwrap()["refs"][2]["v"]
                .as_str()
                .map(str::len),
            Some(1 << 20)
        );
    }

    #[test]
    fn timestamps_print_as_rfc3339() {
        assert_eq!(
            parse_timestamp("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            parse_timestamp("2001-2-3 4:05:06").as_deref(),
            Some("2001-02-03T04:05:06Z")
        );
        assert_eq!(parse_timestamp("2001-02-30"), None);
    }
}
