//! The kustomize engine on a tree of files from the input (`path\0contents\0`…, the kustomization
//! at the root): never panics, never reads outside the root, and its output stays bounded.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

/// Objects a build may produce from one fuzz input (the engine's own cap is higher).
const MAX_OBJECTS: usize = 100_000;

fuzz_target!(|data: &[u8]| {
    let Ok(scratch) = tempfile::tempdir() else {
        return;
    };
    let root = scratch.path().join("root");
    let outside = scratch.path().join("outside.yaml");
    if std::fs::create_dir(&root).is_err()
        || std::fs::write(
            &outside,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: secret-outside\n",
        )
        .is_err()
    {
        return;
    }
    let mut fields = data.split(|b| *b == 0);
    while let (Some(path), Some(contents)) = (fields.next(), fields.next()) {
        let Ok(path) = std::str::from_utf8(path) else {
            continue;
        };
        let relative = Path::new(path);
        if path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            continue;
        }
        let file = root.join(relative);
        if let Some(parent) = file.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(file, contents);
    }
    let Ok(objects) = sluice_kustomize::build(&root) else {
        return;
    };
    assert!(objects.len() <= MAX_OBJECTS, "{} objects", objects.len());
    let rendered = sluice_kustomize::to_yaml(&objects);
    assert!(
        !rendered.contains("secret-outside"),
        "read a file outside the root"
    );
});
