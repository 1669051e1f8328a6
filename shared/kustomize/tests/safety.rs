//! Safe by default: nothing is read from outside the build root, and remote sources and plugins
//! are refused with errors naming the feature and the file.

use std::path::Path;

use std::time::Duration;

use sluice_kustomize::{
    BuildLimits, BuildOptions, Error, FileAccess, MissingKustomization, build, build_with,
};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

#[test]
fn bases_outside_the_root_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    write(
        outer.path(),
        &[
            ("base/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("base/cm.yaml", CONFIGMAP),
        ],
    );
    write(
        outer.path(),
        &[("app/kustomization.yaml", "resources: [../base]\n")],
    );
    let err = build(&outer.path().join("app")).unwrap_err();
    assert!(matches!(err, Error::OutsideRoot { .. }), "{err}");
    let options = BuildOptions {
        root: Some(outer.path().to_path_buf()),
        ..BuildOptions::default()
    };
    assert_eq!(
        build_with(&outer.path().join("app"), &options)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    write(
        outer.path(),
        &[
            ("secret.yaml", CONFIGMAP),
            ("app/kustomization.yaml", "resources: [link.yaml]\n"),
        ],
    );
    std::os::unix::fs::symlink(
        outer.path().join("secret.yaml"),
        outer.path().join("app/link.yaml"),
    )
    .unwrap();
    let err = build(&outer.path().join("app")).unwrap_err();
    assert!(matches!(err, Error::OutsideRoot { .. }), "{err}");
}

#[test]
fn files_outside_the_kustomization_dir_need_build_root_access() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        &[
            (
                "shared/patch.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {a: b}\n",
            ),
            (
                "app/kustomization.yaml",
                "resources: [cm.yaml]\npatches: [{path: ../shared/patch.yaml}]\n",
            ),
            ("app/cm.yaml", CONFIGMAP),
        ],
    );
    let app = root.path().join("app");
    let strict = BuildOptions {
        root: Some(root.path().to_path_buf()),
        ..BuildOptions::default()
    };
    assert!(matches!(
        build_with(&app, &strict).unwrap_err(),
        Error::OutsideRoot { .. }
    ));
    let like_flux = BuildOptions {
        file_access: FileAccess::BuildRoot,
        ..strict
    };
    let objects = build_with(&app, &like_flux).unwrap();
    assert_eq!(objects[0]["data"]["a"], "b");
}

#[test]
fn remote_sources_and_plugins_are_unsupported() {
    for kustomization in [
        "resources: [https://github.com/example/repo//deploy?ref=main]\n",
        "resources: [github.com/example/repo/deploy]\n",
        "transformers:\n- |\n  apiVersion: example.com/v1\n  kind: Sealer\n  metadata:\n    name: s\n",
        "transformers:\n- |\n  apiVersion: fn.example.com/v1\n  kind: Render\n  metadata:\n    name: r\n    annotations:\n      config.kubernetes.io/function: \"exec: {path: ./render.sh}\"\n",
        "generators:\n- |\n  apiVersion: builtin\n  kind: HelmChartInflationGenerator\n  metadata:\n    name: chart\n",
        "validators: [v.yaml]\n",
        "helmCharts: [{name: x}]\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("kustomization.yaml", kustomization)]);
        let err = build(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Unsupported { .. }),
            "{kustomization}: {err}"
        );
        assert!(err.to_string().contains("kustomization.yaml"), "{err}");
    }
}

#[test]
fn missing_kustomization_is_an_error_unless_generated_like_flux() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("cm.yaml", CONFIGMAP),
            (
                "nested/kustomization.yaml",
                "namePrefix: n-\nresources: [cm.yaml]\n",
            ),
            ("nested/cm.yaml", CONFIGMAP),
        ],
    );
    assert!(matches!(
        build(dir.path()).unwrap_err(),
        Error::MissingKustomization { .. }
    ));
    assert_eq!(
        sluice_kustomize::flux_resources(dir.path()).unwrap(),
        ["./cm.yaml", "./nested"]
    );
    let options = BuildOptions {
        missing_kustomization: MissingKustomization::GenerateLikeFlux,
        ..BuildOptions::default()
    };
    let names: Vec<String> = build_with(dir.path(), &options)
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["c", "n-c"]);
}

#[test]
fn errors_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\nimages:\n- name: nginx\n  newTag: 1.0\n",
            ),
            ("cm.yaml", CONFIGMAP),
        ],
    );
    let err = build(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("kustomization.yaml") && err.contains("images[0].newTag"),
        "{err}"
    );
    // A built-in plugin's failure names its `transformers` entry.
    let patch = "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\n\
                 target: {kind: ConfigMap}\npatch: '[{\"op\": \"remove\", \"path\": \"/nope\"}]'\n";
    write(
        dir.path(),
        &[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\ntransformers: [patch.yaml]\n",
            ),
            ("patch.yaml", patch),
        ],
    );
    let err = build(dir.path()).unwrap_err().to_string();
    assert!(err.contains("transformers[0]"), "{err}");
}

#[test]
fn a_symlinked_kustomization_file_must_resolve_inside_the_root() {
    let outer = tempfile::tempdir().unwrap();
    write(
        outer.path(),
        &[
            ("private/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("app/cm.yaml", CONFIGMAP),
        ],
    );
    std::os::unix::fs::symlink(
        outer.path().join("private/kustomization.yaml"),
        outer.path().join("app/kustomization.yaml"),
    )
    .unwrap();
    let err = build(&outer.path().join("app")).unwrap_err();
    assert!(matches!(err, Error::OutsideRoot { .. }), "{err}");
}

/// `layers` layers, each including the previous one twice with different suffixes: 2^layers
/// objects from a few hundred bytes.
fn fan_out(dir: &Path, layers: usize) -> std::path::PathBuf {
    write(
        dir,
        &[
            ("l0/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("l0/cm.yaml", CONFIGMAP),
        ],
    );
    for layer in 1..=layers {
        let previous = layer - 1;
        for side in ["a", "b"] {
            write(
                dir,
                &[(
                    &format!("l{layer}/{side}/kustomization.yaml"),
                    &format!("nameSuffix: -{side}\nresources: [../../l{previous}]\n"),
                )],
            );
        }
        write(
            dir,
            &[(
                &format!("l{layer}/kustomization.yaml"),
                "resources: [a, b]\n",
            )],
        );
    }
    dir.join(format!("l{layers}"))
}

#[test]
fn base_fan_out_stops_at_the_object_and_byte_limits() {
    let root = tempfile::tempdir().unwrap();
    let top = fan_out(root.path(), 10);
    let options = |limits: BuildLimits| BuildOptions {
        root: Some(root.path().to_path_buf()),
        limits,
        ..BuildOptions::default()
    };
    let objects = BuildLimits {
        max_objects: 500,
        ..BuildLimits::default()
    };
    let err = build_with(&top, &options(objects)).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    assert!(err.to_string().contains("500 objects"), "{err}");
    let bytes = BuildLimits {
        max_bytes: 16 << 10,
        ..BuildLimits::default()
    };
    let err = build_with(&top, &options(bytes)).unwrap_err();
    assert!(err.to_string().contains("bytes read"), "{err}");
    let expired = BuildLimits {
        timeout: Some(Duration::ZERO),
        ..BuildLimits::default()
    };
    let err = build_with(&top, &options(expired)).unwrap_err();
    assert!(err.to_string().contains("time limit"), "{err}");
    let small = fan_out(&root.path().join("small"), 3);
    assert_eq!(
        build_with(&small, &options(BuildLimits::default()))
            .unwrap()
            .len(),
        8
    );
}

#[test]
fn nesting_stops_at_the_depth_limit() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        &[
            ("d0/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("d0/cm.yaml", CONFIGMAP),
        ],
    );
    for depth in 1..=10 {
        write(
            root.path(),
            &[(
                &format!("d{depth}/kustomization.yaml"),
                &format!("resources: [../d{}]\n", depth - 1),
            )],
        );
    }
    let options = BuildOptions {
        root: Some(root.path().to_path_buf()),
        limits: BuildLimits {
            max_depth: 5,
            ..BuildLimits::default()
        },
        ..BuildOptions::default()
    };
    let err = build_with(&root.path().join("d10"), &options).unwrap_err();
    assert!(err.to_string().contains("5 levels"), "{err}");
    assert_eq!(
        build_with(&root.path().join("d5"), &options).unwrap().len(),
        1
    );
}
