//! Commit messages from Flux's Go `text/template` templates, rendered with `gotmpl` (Go's syntax,
//! builtins, printing and sorted map ranges) plus Sprig's string and list functions.
//!
//! Data, as in Flux: `.AutomationObject` (`NamespacedName`), `.Values`, `.Changed.Changes`
//! (`OldValue`, `NewValue`, `Setter`), `.Changed.FileChanges` (file → object → changes) and
//! `.Changed.Objects` (object → changes), objects keyed by identifier (`$resource.Kind`, `.Name`…).

mod data;
mod rewrite;
mod sprig;

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{Template, Value, ValueFunc};

use crate::setters::{Change, ObjectId};

/// Template fields Flux removed; a template using them is Stalled (`RemovedTemplateField`).
const REMOVED_FIELDS: &[&str] = &[".Updated", ".Changed.ImageResult"];
/// Range iterations one message may take; a run changes at most a few thousand values.
const MAX_RANGE_ITERATIONS: u64 = 100_000;
/// Go's `text/template` builtin functions.
const GO_BUILTINS: &[&str] = &[
    "and", "call", "eq", "ge", "gt", "html", "index", "js", "le", "len", "lt", "ne", "not", "or",
    "print", "printf", "println", "slice", "urlquery",
];
/// The name the template is parsed and executed under.
const TEMPLATE_NAME: &str = "commit message";
/// The longest commit message rendered.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "template uses '{0}', which was removed in image.toolkit.fluxcd.io/v1; use .Changed.Changes or .Changed.FileChanges in spec.git.commit.messageTemplate"
    )]
    RemovedField(&'static str),
    #[error("cannot parse spec.git.commit.messageTemplate: {0}")]
    Parse(String),
    #[error("cannot render spec.git.commit.messageTemplate: {0}")]
    Render(String),
}

/// The changes of one run: file → (object, change) pairs.
pub type FileChanges = BTreeMap<String, Vec<(ObjectId, Change)>>;

/// Checks `template` for removed fields and syntax, before any Git work.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    parse(template).map(|_| ())
}

/// Whether `field` appears as a whole field path (`.Updated`, not `.UpdatedAt`).
fn uses_field(template: &str, field: &str) -> bool {
    template.match_indices(field).any(|(at, _)| {
        !template[at + field.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Parses `source` with the functions Flux offers, adapted to the data's struct-like values.
fn parse(source: &str) -> Result<Template, TemplateError> {
    if let Some(field) = REMOVED_FIELDS
        .iter()
        .find(|field| uses_field(source, field))
    {
        return Err(TemplateError::RemovedField(field));
    }
    let mut functions = sprig::functions();
    functions.insert(rewrite::OBJECT_KEY_FN.to_owned(), key_function(object_key));
    functions.insert(rewrite::PRINT_KEY_FN.to_owned(), key_function(print_key));
    let defined = |name: &str| GO_BUILTINS.contains(&name) || functions.contains_key(name);
    let mut template = Template::new(TEMPLATE_NAME)
        .funcs(functions.clone())
        .max_range_iters(MAX_RANGE_ITERATIONS)
        .parse(source)
        .map_err(|e| TemplateError::Parse(e.to_string()))?;
    let names: Vec<String> = template
        .templates()
        .into_iter()
        .map(str::to_owned)
        .collect();
    for name in names {
        if let Some(tree) = template.lookup(&name) {
            if let Some(function) = rewrite::undefined_function(tree, &defined) {
                return Err(TemplateError::Parse(format!(
                    "function \"{function}\" not defined"
                )));
            }
            let mut tree = tree.clone();
            rewrite::rewrite(&mut tree);
            template = template.add_parse_tree(&name, tree);
        }
    }
    Ok(template)
}

fn key_function(f: fn(&Value) -> Result<Value, gotmpl::TemplateError>) -> ValueFunc {
    Arc::new(move |args: &[Value]| match args {
        [key] => f(key),
        _ => Err(gotmpl::TemplateError::ArgCount {
            name: "map key".to_owned(),
            expected: 1,
            got: args.len(),
        }),
    })
}

/// The fields of an object identifier key; other values have none, as in Go.
fn object_key(key: &Value) -> Result<Value, gotmpl::TemplateError> {
    key.as_str()
        .and_then(data::decode_object_key)
        .ok_or_else(|| {
            gotmpl::TemplateError::Exec(format!(
                "can't evaluate a field of {key} ({})",
                key.type_name()
            ))
        })
}

fn print_key(key: &Value) -> Result<Value, gotmpl::TemplateError> {
    Ok(match key.as_str() {
        Some(text) => Value::from(data::print_key(text)),
        None => key.clone(),
    })
}

/// Renders `template` for the automation `namespace`/`name` and the run's changes.
pub fn render(
    template: &str,
    namespace: &str,
    name: &str,
    changes: &FileChanges,
    values: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let parsed = parse(template)?;
    let data = data::template_data(namespace, name, changes, values);
    let mut message = BoundedText::default();
    if parsed.lookup(TEMPLATE_NAME).is_none() {
        return Ok(String::new());
    }
    match parsed.execute_template_fmt(&mut message, TEMPLATE_NAME, &data) {
        Ok(()) => Ok(message.text),
        Err(_) if message.overflowed => Err(TemplateError::Render(format!(
            "the message is longer than {MAX_MESSAGE_BYTES} bytes"
        ))),
        Err(e) => Err(TemplateError::Render(e.to_string())),
    }
}

/// Rendered text that refuses to grow past `MAX_MESSAGE_BYTES`.
#[derive(Default)]
struct BoundedText {
    text: String,
    overflowed: bool,
}

impl std::fmt::Write for BoundedText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > MAX_MESSAGE_BYTES {
            self.overflowed = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
