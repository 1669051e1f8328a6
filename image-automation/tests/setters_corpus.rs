//! A corpus of real-world shaped files: after an update each equals its original with exactly
//! the marked values replaced, byte for byte (comments, anchors, flow style, quoting, CRLF,
//! indentation and multi-document separators untouched).

use std::path::Path;

use image_automation::setters::{Marker, MarkerField, Resolution, update_tree};

fn resolve(marker: &Marker) -> Resolution {
    match (marker.namespace.as_str(), marker.policy.as_str()) {
        ("flux-system", "podinfo") => Resolution::Value(match marker.field {
            MarkerField::Image => "ghcr.io/stefanprodan/podinfo:6.5.0".to_owned(),
            MarkerField::Tag => "6.5.0".to_owned(),
            MarkerField::Name => "ghcr.io/stefanprodan/podinfo".to_owned(),
            MarkerField::Digest => "sha256:feed".to_owned(),
        }),
        ("flux-system", "numeric") => Resolution::Value("20240115".to_owned()),
        ("flux-system", "missing") => Resolution::Unresolved("not found".to_owned()),
        _ => Resolution::Ignore,
    }
}

/// Each file and its exact replacements (old text → new text, applied once each).
const EXPECTED: &[(&str, &[(&str, &str)])] = &[
    ("deployment.yaml", &[("podinfo:5.0.0 #", "podinfo:6.5.0 #")]),
    (
        "values.yaml",
        &[
            ("podinfo-old #", "podinfo #"),
            ("tag: '5.0.0'", "tag: '6.5.0'"),
            ("digest: \"\"", "digest: \"sha256:feed\""),
            ("tag: 4.0.0}", "tag: 6.5.0}"),
        ],
    ),
    ("kustomization.yaml", &[("newTag: 5.0.1", "newTag: 6.5.0")]),
    (
        "helmrelease-multidoc.yaml",
        &[
            ("tag: 5.0.2", "tag: 6.5.0"),
            ("podinfo:5.0.3\"", "podinfo:6.5.0\""),
        ],
    ),
    ("crlf.yaml", &[("podinfo:5.0.4", "podinfo:6.5.0")]),
    (
        "block-scalars.yaml",
        &[
            (
                "| # {\"$imagepolicy\": \"flux-system:podinfo\"}\n      ghcr.io/stefanprodan/podinfo:5.0.0",
                "|- # {\"$imagepolicy\": \"flux-system:podinfo\"}\n      ghcr.io/stefanprodan/podinfo:6.5.0",
            ),
            (
                ">+ # {\"$imagepolicy\": \"flux-system:podinfo\"}\n          ghcr.io/stefanprodan/podinfo:5.0.1",
                ">- # {\"$imagepolicy\": \"flux-system:podinfo\"}\n          ghcr.io/stefanprodan/podinfo:6.5.0",
            ),
            // Flux quotes a value YAML 1.1 reads as a number.
            ("tag: 5 #", "tag: \"20240115\" #"),
        ],
    ),
    ("no-marker.yaml", &[]),
];

#[test]
fn corpus_changes_only_the_marked_scalars() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let work = tempfile::tempdir().unwrap();
    for (file, _) in EXPECTED {
        std::fs::copy(source.join(file), work.path().join(file)).unwrap();
    }
    let update = update_tree(work.path(), ".", &resolve).unwrap();
    for (file, replacements) in EXPECTED {
        let mut expected = std::fs::read_to_string(source.join(file)).unwrap();
        for (old, new) in *replacements {
            assert!(
                expected.contains(old),
                "{file}: {old:?} not in the original"
            );
            expected = expected.replacen(old, new, 1);
        }
        let actual = std::fs::read_to_string(work.path().join(file)).unwrap();
        assert_eq!(actual, expected, "{file}");
        assert_eq!(
            update.files.get(*file).map_or(0, Vec::len),
            replacements.len(),
            "{file}"
        );
    }
    assert_eq!(update.unresolved.len(), 1);
    assert_eq!(update.unresolved[0].file, "kustomization.yaml");
    assert_eq!(update.unresolved[0].line, 10);
    assert!(
        update.problem_files.is_empty(),
        "{:?}",
        update.problem_files
    );
}

#[test]
fn thousand_files_three_marked() {
    let work = tempfile::tempdir().unwrap();
    for index in 0..1000 {
        let dir = work.path().join(format!("apps/app{}", index % 10));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = if index % 333 == 1 {
            " # {\"$imagepolicy\": \"flux-system:podinfo\"}"
        } else {
            ""
        };
        let text = format!(
            "kind: ConfigMap\nmetadata:\n  name: c{index}\ndata:\n  image: old:1{marker}\n"
        );
        std::fs::write(dir.join(format!("c{index}.yaml")), text).unwrap();
    }
    let started = std::time::Instant::now();
    let update = update_tree(work.path(), "apps", &resolve).unwrap();
    assert_eq!(update.files.len(), 3, "{:?}", update.files.keys());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn paths_outside_the_checkout_are_refused() {
    let work = tempfile::tempdir().unwrap();
    for path in ["../x", "/etc", "missing"] {
        assert!(update_tree(work.path(), path, &resolve).is_err(), "{path}");
    }
}
