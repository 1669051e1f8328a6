//! Property tests: arbitrary bytes or YAML-like input never panic and never hang, and rendered
//! YAML reads back as the same values.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Map, Value};
use sluice_kustomize::{
    BuildOptions, MissingKustomization, build_with, parse_yaml_stream, to_yaml,
};

/// Longest a single build of a tiny input may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// Builds `files` in a temporary directory on another thread, failing if it takes too long;
/// a panic in the build fails the test through the thread's result.
fn build_files(files: Vec<(&'static str, Vec<u8>)>, flux: bool) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in &files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let root = dir.path().to_path_buf();
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let missing = if flux {
            MissingKustomization::GenerateLikeFlux
        } else {
            MissingKustomization::Error
        };
        let options = BuildOptions {
            missing_kustomization: missing,
            ..BuildOptions::default()
        };
        let outcome = build_with(&root, &options).map(|objects| to_yaml(&objects));
        let _ = done.send(());
        outcome
    });
    assert!(
        finished.recv_timeout(DEADLINE).is_ok() || worker.is_finished(),
        "the build did not finish in {DEADLINE:?}"
    );
    assert!(worker.join().is_ok(), "the build panicked");
    drop(dir);
}

const KUSTOMIZATION: &str = "namePrefix: p-\nnamespace: ns\ncommonLabels: {app: x}\nimages: [{name: nginx, newTag: \"2\"}]\nresources: [r.yaml]\npatches: [{path: patch.yaml}]\nconfigMapGenerator: [{name: c, literals: [a=b]}]\nreplicas: [{name: web, count: 2}]\n";

/// YAML-ish text built from fragments kustomize inputs are made of, at random indentation.
fn yaml_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("apiVersion: apps/v1".to_string()),
        Just("apiVersion: v1".to_string()),
        Just("kind: Deployment".to_string()),
        Just("kind: ConfigMap".to_string()),
        Just("kind: List".to_string()),
        Just("metadata:".to_string()),
        Just("name: web".to_string()),
        Just("namespace: other".to_string()),
        Just("spec:".to_string()),
        Just("template:".to_string()),
        Just("containers:".to_string()),
        Just("- name: web".to_string()),
        Just("- image: nginx".to_string()),
        Just("items:".to_string()),
        Just("- ".to_string()),
        Just("$patch: delete".to_string()),
        Just("$patch: replace".to_string()),
        Just("- $patch: replace".to_string()),
        Just("<<: *a".to_string()),
        Just("x: &a {b: 1}".to_string()),
        Just("y: *a".to_string()),
        Just("data: {k: v}".to_string()),
        Just("labels: null".to_string()),
        Just("env: [{name: A, value: '1'}, {name: A}]".to_string()),
        Just("ports: [{containerPort: 80}, {containerPort: 80, protocol: UDP}]".to_string()),
        Just("---".to_string()),
        Just("...".to_string()),
        Just("# comment".to_string()),
        Just("key: |\n  block".to_string()),
        Just("? complex".to_string()),
        Just("!!binary x: y".to_string()),
        "[a-z$<>&*!|{}\\[\\]:,#'\" -]{0,12}",
    ];
    prop::collection::vec((0usize..8, fragment), 0..24).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(indent, line)| format!("{}{line}\n", " ".repeat(indent)))
            .collect()
    })
}

/// Arbitrary JSON values with strings YAML could misread.
fn json_value() -> impl Strategy<Value = Value> {
    let tricky = prop_oneof![
        Just("yes".to_string()),
        Just("0123".to_string()),
        Just("1e3".to_string()),
        Just("~".to_string()),
        Just(String::new()),
        Just("- a".to_string()),
        Just("a: b".to_string()),
        Just("#x".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("2001-12-14".to_string()),
        Just("0x1F".to_string()),
        Just("1_000".to_string()),
        Just(".5".to_string()),
        Just("multi\nline\n".to_string()),
        Just(" padded ".to_string()),
        Just("<<".to_string()),
        ".{0,8}",
    ];
    let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            (-1.0e6f64..1.0e6).prop_map(
                |f| serde_json::Number::from_f64(f + 0.25).map_or(Value::Null, Value::Number)
            ),
            tricky.clone().prop_map(Value::String),
        ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((tricky.clone(), inner), 0..5).prop_map(|entries| {
                Value::Object(entries.into_iter().collect::<Map<String, Value>>())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_resources_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        build_files(vec![("kustomization.yaml", KUSTOMIZATION.as_bytes().to_vec()), ("r.yaml", bytes.clone()), ("patch.yaml", bytes)], false);
    }

    #[test]
    fn arbitrary_bytes_as_kustomization_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        build_files(vec![("kustomization.yaml", bytes), ("r.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n".to_vec())], false);
    }

    #[test]
    fn yaml_like_resources_and_patches_never_panic(resource in yaml_like(), patch in yaml_like()) {
        build_files(vec![
            ("kustomization.yaml", KUSTOMIZATION.as_bytes().to_vec()),
            ("r.yaml", format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n{resource}").into_bytes()),
            ("patch.yaml", format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n{patch}").into_bytes()),
        ], false);
    }

    #[test]
    fn yaml_like_kustomizations_never_panic(kustomization in yaml_like(), resource in yaml_like()) {
        build_files(vec![("kustomization.yaml", kustomization.into_bytes()), ("r.yaml", resource.into_bytes())], false);
    }

    #[test]
    fn flux_generation_never_panics(a in yaml_like(), b in prop::collection::vec(any::<u8>(), 0..256)) {
        build_files(vec![("a.yaml", a.into_bytes()), ("sub/b.yml", b)], true);
    }

    #[test]
    fn yaml_parsing_never_panics(text in ".{0,400}") {
        let _ = parse_yaml_stream(&text);
    }

    #[test]
    fn rendered_yaml_reads_back(values in prop::collection::vec(json_value(), 1..4)) {
        let objects: Vec<Value> = values.into_iter().map(|v| {
            let mut object = Map::new();
            object.insert("value".to_string(), v);
            Value::Object(object)
        }).collect();
        let text = to_yaml(&objects);
        let parsed = parse_yaml_stream(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed, objects, "{}", text);
    }
}

/// A YAML alias bomb is refused quickly instead of expanding.
#[test]
fn alias_bombs_do_not_hang() {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..16 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    build_files(
        vec![
            ("kustomization.yaml", b"resources: [r.yaml]\n".to_vec()),
            ("r.yaml", text.into_bytes()),
        ],
        false,
    );
    assert!(parse_yaml_stream("a: &a [1]\nb: *a\n").is_ok());
}
