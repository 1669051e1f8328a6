//! Image setters on arbitrary YAML text: never panic; an edit is exactly the original text with
//! each marked scalar replaced by the new value in its own quoting style (a block scalar marked
//! on its header line reads the new value afterwards), and it is idempotent.
#![no_main]

use image_automation::setters::scan::{Style, find_markers};
use image_automation::setters::{Resolution, update_text};
use libfuzzer_sys::fuzz_target;

/// The value every marker resolves to; plain-safe, so a plain scalar stays plain.
const NEW: &str = "ghcr.io/fuzz/app:9.9.9";

/// The original text with every rewritable marked scalar replaced: the oracle for `update_text`;
/// `None` when a block scalar is marked on its header line (checked by what it reads instead).
fn expected_edit(text: &str) -> Option<String> {
    let mut expected = text.to_owned();
    let marked = find_markers(text).expect("update_text parsed this text");
    if marked.iter().any(|scalar| scalar.block_header.is_some()) {
        return None;
    }
    for scalar in marked.iter().rev() {
        let rendered = match scalar.style {
            _ if scalar.span.is_empty() || scalar.value == NEW => continue,
            Style::Block => continue,
            Style::Plain => NEW.to_owned(),
            Style::SingleQuoted => format!("'{NEW}'"),
            Style::DoubleQuoted => format!("\"{NEW}\""),
        };
        expected.replace_range(scalar.span.clone(), &rendered);
    }
    Some(expected)
}

/// A block scalar marked on its header line reads exactly the new value after the update.
fn check_marked_blocks(original: &str, updated: &str) {
    let before = find_markers(original).expect("update_text parsed this text");
    let after = find_markers(updated).expect("an updated text parses");
    assert_eq!(before.len(), after.len(), "the markers changed");
    for (old, new) in before.iter().zip(&after) {
        if old.block_header.is_some() {
            assert_eq!(
                new.value, NEW,
                "a marked block scalar does not read the new value"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let resolve = |_: &_| Resolution::Value(NEW.to_owned());
    let Ok(update) = update_text(text, &resolve) else {
        return;
    };
    let updated = update.text.clone().unwrap_or_else(|| text.to_owned());
    match expected_edit(text) {
        Some(expected) => assert_eq!(
            updated, expected,
            "bytes outside the marked scalars changed"
        ),
        None => check_marked_blocks(text, &updated),
    }
    if update.text.is_none() {
        return;
    }
    let again = update_text(&updated, &resolve).expect("an updated text parses");
    assert!(
        again.text.is_none(),
        "a second update changed the text again"
    );
});
