//! Revision and digest strings (`main@sha1:<hex>`, `sha256:<hex>`): never panic, and what parses
//! prints back and parses again as the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_api::revision::{Digest, Revision};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(revision) = text.parse::<Revision>() {
        let printed = revision.to_string();
        let again: Revision = printed.parse().expect("a printed revision parses");
        assert_eq!(again, revision);
        assert_eq!(again.to_string(), printed);
    }
    if let Ok(digest) = Digest::parse_qualified(text) {
        let again = Digest::parse_qualified(&digest.to_string()).expect("a printed digest parses");
        assert_eq!(again, digest);
    }
});
