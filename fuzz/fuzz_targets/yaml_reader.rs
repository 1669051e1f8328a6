//! The YAML reader kustomize builds read with: never panics, and what it accepts renders to YAML
//! that reads back as the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(documents) = sluice_kustomize::parse_yaml_stream(text) else {
        return;
    };
    let rendered = sluice_kustomize::to_yaml(&documents);
    let reread = sluice_kustomize::parse_yaml_stream(&rendered)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{rendered}"));
    let kept: Vec<_> = documents.into_iter().filter(|d| !d.is_null()).collect();
    let reread: Vec<_> = reread.into_iter().filter(|d| !d.is_null()).collect();
    assert_eq!(kept, reread, "round trip changed the values:\n{rendered}");
});
