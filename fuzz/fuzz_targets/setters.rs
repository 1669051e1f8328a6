//! Image setters on arbitrary YAML text: never panic, and an edit changes only the marked
//! scalars (every other line is byte-identical, and writing the values back restores the text).
#![no_main]

use image_automation::setters::{Resolution, update_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(update) = update_text(text, &|_| Resolution::Value("ghcr.io/fuzz/app:9.9.9".to_owned())) else {
        return;
    };
    let Some(updated) = update.text else { return };
    let before: Vec<&str> = text.split('\n').collect();
    let after: Vec<&str> = updated.split('\n').collect();
    assert_eq!(before.len(), after.len(), "line count changed");
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(changed <= update.changes.len(), "{changed} lines changed for {} changes", update.changes.len());
    let again = update_text(&updated, &|_| Resolution::Value("ghcr.io/fuzz/app:9.9.9".to_owned()))
        .expect("an updated text parses");
    assert!(again.text.is_none(), "a second update changed the text again");
});
