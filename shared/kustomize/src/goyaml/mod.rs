//! The YAML text kustomize's `ResMap.AsYaml` prints for built objects: each object through
//! `sigs.k8s.io/yaml.JSONToYAML` (go-yaml v2), joined by `---`. Flux hashes it into
//! `status.history[].digest`, so ours must be the same bytes.

mod number;
mod order;
mod resolve;
mod style;
mod write;

use serde_json::{Map, Value};

use style::{Style, is_break, is_printable, string_style};

/// Lines are folded at spaces past this column, as go-yaml v2 does.
const WIDTH: usize = 80;
/// Keys longer than this (in bytes) are written as `? key` complex keys.
const SIMPLE_KEY_MAX: usize = 128;

/// The objects as kustomize's `AsYaml` prints them, byte for byte.
pub fn go_yaml_v2_stream(objects: &[Value]) -> String {
    let mut out = String::new();
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let mut emitter = Emitter::default();
        emitter.node(object, -1, Context::Root);
        emitter.write_indent(0);
        out.push_str(&emitter.out);
    }
    out
}

/// Where a node sits, which decides indentation and quoting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    Item,
    Value,
    SimpleKey,
    ComplexKey,
}

/// The emitter's state between writes, as go-yaml v2 keeps it.
struct Emitter {
    out: String,
    column: usize,
    /// The last character written was whitespace (or nothing on the line yet).
    whitespace: bool,
    /// Only indentation has been written on the current line.
    indention: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Self {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
        }
    }
}

impl Emitter {
    fn node(&mut self, value: &Value, indent: i64, context: Context) {
        match value {
            Value::Object(map) if !map.is_empty() => self.mapping(map, indent),
            Value::Array(items) if !items.is_empty() => self.sequence(items, indent, context),
            Value::Object(_) => self.flow_empty("{}"),
            Value::Array(_) => self.flow_empty("[]"),
            Value::String(s) => self.string(s, indent, context),
            Value::Number(n) => self.scalar(&number::number(n), Style::Plain, indent, context),
            Value::Bool(b) => self.scalar(
                if *b { "true" } else { "false" },
                Style::Plain,
                indent,
                context,
            ),
            Value::Null => self.scalar("null", Style::Plain, indent, context),
        }
    }

    fn mapping(&mut self, map: &Map<String, Value>, indent: i64) {
        let indent = if indent < 0 { 0 } else { indent + 2 };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| order::compare(a, b));
        for key in keys {
            self.write_indent(indent);
            if key.len() <= SIMPLE_KEY_MAX && !key.chars().any(is_break) {
                self.string(key, indent, Context::SimpleKey);
                self.indicator(":", false, false, false);
            } else {
                self.indicator("?", true, false, true);
                self.string(key, indent, Context::ComplexKey);
                self.write_indent(indent);
                self.indicator(":", true, false, true);
            }
            self.node(&map[key], indent, Context::Value);
        }
    }

    fn sequence(&mut self, items: &[Value], indent: i64, context: Context) {
        let in_mapping = matches!(
            context,
            Context::Value | Context::SimpleKey | Context::ComplexKey
        );
        let indent = if indent < 0 {
            0
        } else if in_mapping && !self.indention {
            indent
        } else {
            indent + 2
        };
        for item in items {
            self.write_indent(indent);
            self.indicator("-", true, false, true);
            self.node(item, indent, Context::Item);
        }
    }

    fn string(&mut self, s: &str, indent: i64, context: Context) {
        let style = string_style(s, context == Context::SimpleKey);
        self.scalar(s, style, indent, context);
    }

    fn flow_empty(&mut self, text: &str) {
        self.indicator(&text[..1], true, true, false);
        self.indicator(&text[1..], false, false, false);
    }

    fn scalar(&mut self, text: &str, style: Style, indent: i64, context: Context) {
        let indent = if indent < 0 { 2 } else { indent + 2 };
        let folding = context != Context::SimpleKey;
        match style {
            Style::Plain => self.plain(text, indent, folding),
            Style::Single => self.single_quoted(text, indent, folding),
            Style::Double => self.double_quoted(text, indent, folding),
            Style::Literal => self.literal(text, indent),
        }
    }

    /// Starts a new line at `indent` unless the current line holds only that indentation.
    fn write_indent(&mut self, indent: i64) {
        let indent = usize::try_from(indent).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.newline();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(
        &mut self,
        text: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        text.chars().for_each(|c| self.put(c));
        self.whitespace = is_whitespace;
        self.indention &= is_indention;
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// Writes a line break character from a value: LF as a newline, others as themselves.
    fn value_break(&mut self, c: char) {
        if c == '\n' {
            self.newline();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }
}
