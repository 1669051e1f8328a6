//! Image setters on arbitrary YAML text: never panic; an edit is exactly the original text with
//! each marked scalar replaced by the new value in its own quoting style, and it is idempotent.
#![no_main]

use image_automation::setters::scan::{Style, find_markers};
use image_automation::setters::{Resolution, update_text};
use libfuzzer_sys::fuzz_target;

/// The value every marker resolves to; plain-safe, so a plain scalar stays plain.
const NEW: &str = "ghcr.io/fuzz/app:9.9.9";

/// The original text with every rewritable marked scalar replaced: the oracle for `update_text`.
fn expected_edit(text: &str) -> String {
    let mut expected = text.to_owned();
    let marked = find_markers(text).expect("update_text parsed this text");
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
    expected
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
    assert_eq!(
        updated,
        expected_edit(text),
        "bytes outside the marked scalars changed"
    );
    if update.text.is_none() {
        return;
    }
    let again = update_text(&updated, &resolve).expect("an updated text parses");
    assert!(
        again.text.is_none(),
        "a second update changed the text again"
    );
});
