//! Differential conformance: every case under `testdata/cases` is built by this engine and by
//! the real `kustomize build`, and the outputs are compared object by object, in order.
//!
//! A case directory is built at its root, or at the directory named in its `build-path` file.
//! Cases named `flux-*` have no kustomization file: this engine builds them with
//! `MissingKustomization::GenerateLikeFlux` and kustomize builds a copy given a kustomization
//! listing the same files. `testdata/known-differences.txt` lists cases expected to differ,
//! each with its reason; any other difference fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;
use sluice_kustomize::{BuildOptions, Error, MissingKustomization, build_with, parse_yaml_stream};

const THREADS: usize = 3;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The kustomize binary, built (once, cached) by the repository's tool script.
fn kustomize_binary() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/tools/build.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg("kustomize")
        .output()
        .expect("running e2e/tools/build.sh");
    assert!(
        output.status.success(),
        "build.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kustomize="))
        .expect("build.sh printed no kustomize path");
    PathBuf::from(path.trim())
}

#[derive(Debug)]
enum Outcome {
    Objects(Vec<Value>),
    Failed(String),
}

fn run_kustomize(binary: &Path, dir: &Path) -> Outcome {
    let output = Command::new(binary)
        .arg("build")
        .arg(dir)
        .output()
        .expect("running kustomize");
    if !output.status.success() {
        return Outcome::Failed(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    match parse_yaml_stream(&String::from_utf8_lossy(&output.stdout)) {
        Ok(documents) => Outcome::Objects(documents.into_iter().filter(|d| !d.is_null()).collect()),
        Err(e) => Outcome::Failed(format!("cannot parse kustomize output: {e}")),
    }
}

/// A copy of a Flux-style case with the kustomization Flux would write, listing every YAML
/// file (and every subdirectory holding a kustomization file) in walk order.
fn flux_copy(case: &Path) -> tempfile::TempDir {
    fn walk(root: &Path, dir: &Path, resources: &mut Vec<String>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            let relative = entry
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if entry.is_dir() {
                if entry.join("kustomization.yaml").exists() {
                    resources.push(format!("./{relative}"));
                } else {
                    walk(root, &entry, resources);
                }
            } else if relative.ends_with(".yaml") || relative.ends_with(".yml") {
                resources.push(format!("./{relative}"));
            }
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_dir(case, copy.path());
    let mut resources = Vec::new();
    walk(copy.path(), copy.path(), &mut resources);
    let listing: String = resources.iter().map(|r| format!("- {r}\n")).collect();
    std::fs::write(
        copy.path().join("kustomization.yaml"),
        format!("resources:\n{listing}"),
    )
    .unwrap();
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Compares one case; `Ok` with a note when both agree, `Err` with the difference otherwise.
fn compare_case(binary: &Path, case: &Path) -> Result<String, String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let build_dir = match std::fs::read_to_string(case.join("build-path")) {
        Ok(relative) => case.join(relative.trim()),
        Err(_) => case.to_path_buf(),
    };
    let root = Some(case.to_path_buf());
    let (ours, theirs) = if name.starts_with("flux-") {
        let options = BuildOptions {
            root,
            missing_kustomization: MissingKustomization::GenerateLikeFlux,
            ..Default::default()
        };
        let copy = flux_copy(&build_dir);
        (
            build_with(&build_dir, &options),
            run_kustomize(binary, copy.path()),
        )
    } else {
        (
            build_with(
                &build_dir,
                &BuildOptions {
                    root,
                    ..Default::default()
                },
            ),
            run_kustomize(binary, &build_dir),
        )
    };
    match (ours, theirs) {
        (Ok(ours), Outcome::Objects(theirs)) => {
            if ours == theirs {
                return Ok(format!("{} objects", ours.len()));
            }
            if ours.len() != theirs.len() {
                return Err(format!(
                    "{} objects from us, {} from kustomize\nours:\n{}\nkustomize:\n{}",
                    ours.len(),
                    theirs.len(),
                    sluice_kustomize::to_yaml(&ours),
                    sluice_kustomize::to_yaml(&theirs)
                ));
            }
            let (index, (a, b)) = ours
                .iter()
                .zip(&theirs)
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .unwrap();
            Err(format!(
                "object {index} differs\nours:\n{}\nkustomize:\n{}",
                sluice_kustomize::to_yaml(std::slice::from_ref(a)),
                sluice_kustomize::to_yaml(std::slice::from_ref(b))
            ))
        }
        (Err(ours), Outcome::Failed(_)) => Ok(format!("both fail ({ours})")),
        (Err(ours @ Error::Unsupported { .. }), Outcome::Objects(_)) => {
            Err(format!("we refuse: {ours}"))
        }
        (Err(ours), Outcome::Objects(theirs)) => Err(format!(
            "we fail: {ours}\nkustomize builds {} objects",
            theirs.len()
        )),
        (Ok(ours), Outcome::Failed(theirs)) => Err(format!(
            "kustomize fails: {theirs}\nwe build {} objects",
            ours.len()
        )),
    }
}

fn known_differences() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(testdata().join("known-differences.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(case, reason)| (case.to_string(), reason.trim().to_string()))
        .collect()
}

#[test]
fn conformance_with_kustomize() {
    let binary = kustomize_binary();
    let filter = std::env::var("CONFORMANCE_CASE").ok();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.file_name().unwrap().to_string_lossy().contains(f))
        })
        .collect();
    cases.sort();
    let queue = Mutex::new(cases.clone());
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let Some(case) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let name = case.file_name().unwrap().to_string_lossy().to_string();
                    let result = compare_case(&binary, &case);
                    results.lock().unwrap().insert(name, result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let known = known_differences();
    let mut regressions = Vec::new();
    let mut passed = 0;
    for (name, result) in &results {
        if std::env::var("CONFORMANCE_VERBOSE").is_ok()
            && let Ok(note) = result
        {
            println!("ok {name}: {note}");
        }
        match (result, known.get(name)) {
            (Ok(_), None) => passed += 1,
            (Ok(_), Some(_)) => {
                passed += 1;
                println!(
                    "note: {name} now matches kustomize; remove it from known-differences.txt"
                );
            }
            (Err(difference), Some(reason)) => {
                println!("known difference {name}: {reason}");
                if std::env::var("CONFORMANCE_VERBOSE").is_ok() {
                    println!("{difference}");
                }
            }
            (Err(difference), None) => regressions.push(format!("--- {name}: {difference}")),
        }
    }
    println!(
        "conformance: {passed}/{} cases identical to kustomize ({} known differences)",
        results.len(),
        known.len()
    );
    for stale in known
        .keys()
        .filter(|k| !results.contains_key(*k) && filter.is_none())
    {
        println!("note: known difference {stale} has no case directory");
    }
    assert!(
        regressions.is_empty(),
        "{} cases differ from kustomize:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}
