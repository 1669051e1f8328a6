//! Setters: the values marked `# {"$imagepolicy": "<ns>:<name>[:tag|:name|:digest]"}` are
//! replaced by what the named ImagePolicy selected, changing only the replaced scalar's bytes.
//!
//! - [`marker`]: the marker grammar;
//! - [`scan`]: which scalar each marker marks (byte span, style), via `granit-parser`;
//! - [`quote`]: the replacement in the original quoting style, [`yaml11`] deciding when a plain
//!   value must be quoted;
//! - [`block`]: the replacement in a block scalar marked on its header line;
//! - [`tree`]: the files under `update.path` Flux reads, updated in place.

mod block;
pub mod marker;
mod quote;
pub mod scan;
pub mod tree;
mod yaml11;

pub use marker::{Marker, MarkerField};
pub use scan::ObjectId;
pub use tree::{TreeUpdate, UnresolvedMarker, update_tree};

/// One replaced value, as Flux's template data calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub old_value: String,
    pub new_value: String,
    /// The marker's reference, e.g. `flux-system:podinfo:tag`.
    pub setter: String,
}

/// What a marker resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The value to write.
    Value(String),
    /// Not this automation's marker (another namespace, or a policy it does not select).
    Ignore,
    /// This automation's marker, but it cannot be applied; the reason is reported.
    Unresolved(String),
}

/// A file's new text and what changed in it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TextUpdate {
    /// The new text; `None` when nothing changed.
    pub text: Option<String>,
    pub changes: Vec<(ObjectId, Change)>,
    /// Markers left unchanged: line, marker and why.
    pub unresolved: Vec<(usize, Marker, String)>,
}

/// A file could not be read or parsed, or `update.path` is not inside the checkout.
#[derive(Debug, thiserror::Error)]
pub enum SetterError {
    #[error("YAML parse error at line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("the YAML parser reported no byte offsets")]
    NoOffsets,
    #[error("reading or writing '{path}' failed: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("update path '{0}' is not a directory inside the repository; fix spec.update.path")]
    InvalidPath(String),
}

/// Applies `resolve` to every marker of `text`; only the replaced scalars' bytes change.
pub fn update_text(
    text: &str,
    resolve: &dyn Fn(&Marker) -> Resolution,
) -> Result<TextUpdate, SetterError> {
    let mut update = TextUpdate::default();
    let mut edits = Vec::new();
    for marked in scan::find_markers(text)? {
        let value = match resolve(&marked.marker) {
            Resolution::Value(value) => value,
            Resolution::Ignore => continue,
            Resolution::Unresolved(reason) => {
                update.unresolved.push((marked.line, marked.marker, reason));
                continue;
            }
        };
        if value == marked.value {
            continue;
        }
        match edits_for(text, &marked, &value) {
            Ok(marker_edits) => edits.extend(marker_edits),
            Err(reason) => {
                update
                    .unresolved
                    .push((marked.line, marked.marker, reason.to_owned()));
                continue;
            }
        }
        let change = Change {
            old_value: marked.value,
            new_value: value,
            setter: marked.marker.to_string(),
        };
        update.changes.push((marked.object, change));
    }
    if !edits.is_empty() {
        let mut text = text.to_owned();
        for (span, rendered) in edits.into_iter().rev() {
            text.replace_range(span, &rendered);
        }
        update.text = Some(text);
    }
    Ok(update)
}

/// The edits writing `value` into `marked`, in text order; why not when it cannot be written.
fn edits_for(
    text: &str,
    marked: &scan::MarkedScalar,
    value: &str,
) -> Result<Vec<block::Edit>, &'static str> {
    if let Some(header) = &marked.block_header {
        return block::edits(text, header.clone(), &marked.span, &marked.value, value)
            .ok_or("the new value cannot be written as one line of the marked block scalar");
    }
    if marked.span.is_empty() {
        return Err(
            "the marked value is empty; write a placeholder value for the marker to replace",
        );
    }
    quote::render(value, marked.style, marked.in_flow)
        .map(|rendered| vec![(marked.span.clone(), rendered)])
        .ok_or("the marked block scalar's header (| or >) is not on the marker's line")
}

#[cfg(test)]
mod tests;
