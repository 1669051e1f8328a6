//! Revision and digest strings (`main@sha1:<hex>`, `sha256:<hex>`): never panic, and what parses
//! prints back as the same string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_api::revision::Revision;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(revision) = Revision::parse_qualified(text) {
        assert_eq!(revision.to_string(), text);
        let again = Revision::parse_qualified(&revision.to_string()).expect("printed revision parses");
        assert_eq!(again, revision);
    }
});
