//! Strategic merge and JSON 6902 patches (`resources\0patch`, the first byte choosing how the
//! patch is declared) applied by the engine: never panic, never add an object, same output twice.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// How the patch file is declared in the kustomization, chosen by the input's first byte.
const DECLARATIONS: [&str; 3] = [
    "patches:\n- path: patch.yaml\n",
    "patches:\n- path: patch.yaml\n  target:\n    kind: \".*\"\n",
    "patchesStrategicMerge:\n- patch.yaml\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let Some(split) = rest.iter().position(|b| *b == 0) else {
        return;
    };
    let (resources, patch) = (&rest[..split], &rest[split + 1..]);
    let Ok(scratch) = tempfile::tempdir() else {
        return;
    };
    let root = scratch.path();
    let declaration = DECLARATIONS[usize::from(*mode) % DECLARATIONS.len()];
    let kustomization = format!("resources:\n- resources.yaml\n{declaration}");
    let written = [
        ("kustomization.yaml", kustomization.as_bytes()),
        ("resources.yaml", resources),
        ("patch.yaml", patch),
    ]
    .iter()
    .all(|(name, contents)| std::fs::write(root.join(name), contents).is_ok());
    if !written {
        return;
    }
    let Ok(objects) = sluice_kustomize::build(root) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(resources) else {
        return;
    };
    let listed = sluice_kustomize::parse_yaml_stream(text)
        .map_or(usize::MAX, |docs| docs.iter().map(listed_objects).sum());
    assert!(
        objects.len() <= listed,
        "{} objects from {listed} listed",
        objects.len()
    );
    let again = sluice_kustomize::build(root).expect("a second build of the same tree succeeds");
    assert_eq!(
        sluice_kustomize::to_yaml(&objects),
        sluice_kustomize::to_yaml(&again),
        "two builds of the same tree differ"
    );
});

/// Objects a document can stand for at most: itself, or each item of a list, recursively.
fn listed_objects(doc: &serde_json::Value) -> usize {
    match doc.get("items") {
        Some(serde_json::Value::Array(items)) => {
            1 + items.iter().map(listed_objects).sum::<usize>()
        }
        _ => 1,
    }
}
