//! Benchmark: this engine against `kustomize build`, on the conformance corpus, on a generated
//! overlay with 1000 resources and on a generated CRD bundle of over 50,000 lines with deep
//! schemas. Run with `cargo bench -p sluice-kustomize`.
//!
//! Both sides run as child processes under `/usr/bin/time` (peak RSS is its `%M`, wall time is
//! measured around the child), so process start-up counts for both. The engine's in-process
//! build time is printed as well.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_kustomize::{BuildOptions, build_with};

const RUNS: usize = 5;
const RESOURCES: usize = 1000;
/// CRDs in the generated bundle, each with a schema [`SCHEMA_DEPTH`] levels deep.
const CRDS: usize = 12;
const SCHEMA_DEPTH: usize = 5;
const SCHEMA_FAN_OUT: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (dir, root) = (Path::new(&args[i + 1]), PathBuf::from(&args[i + 2]));
        let options = BuildOptions {
            root: Some(root),
            ..BuildOptions::default()
        };
        let objects = build_with(dir, &options).map(|o| o.len()).unwrap_or(0);
        println!("{objects}");
        return;
    }
    let kustomize = kustomize_binary();
    let this = std::env::current_exe().expect("the benchmark's own path");

    let cases = corpus_cases();
    let mut ours = Totals::default();
    let mut theirs = Totals::default();
    for (dir, root) in &cases {
        ours.add(measure(
            Command::new(&this).arg("--child").arg(dir).arg(root),
        ));
        theirs.add(measure(Command::new(&kustomize).arg("build").arg(dir)));
    }
    report(
        &format!("corpus ({} cases, one process per build)", cases.len()),
        &ours,
        &theirs,
    );

    let generated = tempfile::tempdir().expect("a temporary directory");
    let overlay = write_overlay(generated.path());
    let (mut ours, mut theirs) = (Totals::default(), Totals::default());
    for _ in 0..RUNS {
        ours.add(measure(
            Command::new(&this)
                .arg("--child")
                .arg(&overlay)
                .arg(generated.path()),
        ));
        theirs.add(measure(Command::new(&kustomize).arg("build").arg(&overlay)));
    }
    report(
        &format!("overlay with {RESOURCES} resources (median of {RUNS} runs)"),
        &ours,
        &theirs,
    );

    compare_crd_bundle(&this, &kustomize);

    let options = BuildOptions {
        root: Some(generated.path().to_path_buf()),
        ..BuildOptions::default()
    };
    let reference = Command::new(&kustomize)
        .arg("build")
        .arg(&overlay)
        .output()
        .expect("running kustomize");
    let reference =
        sluice_kustomize::parse_yaml_stream(&String::from_utf8_lossy(&reference.stdout))
            .expect("kustomize output parses");
    let ours = build_with(&overlay, &options).expect("the generated overlay builds");
    println!("  outputs identical to kustomize: {}", ours == reference);
    let mut in_process: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let objects = build_with(&overlay, &options).expect("the generated overlay builds");
            assert_eq!(objects.len(), RESOURCES + 2);
            start.elapsed()
        })
        .collect();
    in_process.sort();
    println!(
        "  in-process build of the overlay (median): {:?}",
        in_process[RUNS / 2]
    );
}

#[derive(Default)]
struct Totals {
    walls: Vec<Duration>,
    peak_rss_kb: u64,
}

impl Totals {
    fn add(&mut self, (wall, rss): (Duration, u64)) {
        self.walls.push(wall);
        self.peak_rss_kb = self.peak_rss_kb.max(rss);
    }

    fn total(&self) -> Duration {
        self.walls.iter().sum()
    }

    fn median(&self) -> Duration {
        let mut walls = self.walls.clone();
        walls.sort();
        walls[walls.len() / 2]
    }
}

fn report(title: &str, ours: &Totals, theirs: &Totals) {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let (ot, tt) = (ours.total().as_secs_f64(), theirs.total().as_secs_f64());
    let (om, tm) = (ours.median().as_secs_f64(), theirs.median().as_secs_f64());
    let (orss, trss) = (
        ours.peak_rss_kb as f64 / 1024.0,
        theirs.peak_rss_kb as f64 / 1024.0,
    );
    println!("{title}");
    println!(
        "  wall total   sluice {ot:8.3}s   kustomize {tt:8.3}s   ratio {:.2}",
        ratio(ot, tt)
    );
    println!(
        "  wall median  sluice {om:8.4}s   kustomize {tm:8.4}s   ratio {:.2}",
        ratio(om, tm)
    );
    println!(
        "  peak RSS     sluice {orss:8.1}MiB kustomize {trss:8.1}MiB ratio {:.2}",
        ratio(orss, trss)
    );
}

/// Runs a command under `/usr/bin/time`, returning its wall time and peak RSS in KiB.
fn measure(command: &mut Command) -> (Duration, u64) {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let start = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(program)
        .args(args)
        .output()
        .expect("running /usr/bin/time");
    let wall = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rss = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (wall, rss)
}

fn kustomize_binary() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/tools/build.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg("kustomize")
        .output()
        .expect("running build.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kustomize="))
        .expect("build.sh printed no kustomize path");
    PathBuf::from(path.trim())
}

/// The corpus cases with a kustomization to build (Flux-style cases need a generated file).
fn corpus_cases() -> Vec<(PathBuf, PathBuf)> {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cases");
    let mut found: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(&cases)
        .expect("testdata/cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("flux-"))
        })
        .map(|case| {
            let dir = match std::fs::read_to_string(case.join("build-path")) {
                Ok(relative) => case.join(relative.trim()),
                Err(_) => case.clone(),
            };
            (dir, case)
        })
        .collect();
    found.sort();
    found
}

/// Writes a base with [`RESOURCES`] objects and an overlay that transforms them all; returns
/// the overlay directory.
fn write_overlay(root: &Path) -> PathBuf {
    let base = root.join("base");
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&base).expect("base dir");
    std::fs::create_dir_all(&overlay).expect("overlay dir");
    let mut files = Vec::new();
    for i in 0..RESOURCES {
        let mut text = String::new();
        match i % 4 {
            0 => write!(
                text,
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels: {{app: app-{i}}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      serviceAccountName: app-{}\n      containers:\n      - name: main\n        image: nginx:1.25\n        ports: [{{containerPort: 8080}}]\n        env: [{{name: MODE, value: prod}}]\n        envFrom: [{{configMapRef: {{name: config-{}}}}}, {{configMapRef: {{name: shared}}}}]\n      volumes: [{{name: cfg, configMap: {{name: config-{}}}}}]\n",
                i + 3,
                i + 2,
                i + 2
            ),
            1 => write!(
                text,
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{}\nspec:\n  selector: {{app: app-{}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n",
                i - 1,
                i - 1
            ),
            2 => write!(text, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  key: value-{i}\n"),
            _ => write!(text, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app-{i}\n"),
        }
        .expect("formatting a resource");
        let name = format!("r{i:04}.yaml");
        std::fs::write(base.join(&name), text).expect("writing a resource");
        files.push(name);
    }
    let mut kustomization =
        String::from("configMapGenerator:\n- name: shared\n  literals: [a=b]\nresources:\n");
    for name in &files {
        kustomization.push_str(&format!("- {name}\n"));
    }
    std::fs::write(base.join("kustomization.yaml"), kustomization).expect("base kustomization");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n- ../base\n- extra.yaml\nnamespace: prod\nnamePrefix: prod-\nlabels:\n- pairs: {env: prod}\n  includeSelectors: true\ncommonAnnotations: {owner: team}\nimages:\n- name: nginx\n  newTag: \"1.27\"\nreplicas:\n- name: app-0\n  count: 3\nconfigMapGenerator:\n- name: shared\n  behavior: merge\n  literals: [c=d]\npatches:\n- target: {kind: Deployment}\n  patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: any}\n    spec:\n      template:\n        spec:\n          containers:\n          - name: main\n            resources: {limits: {cpu: 500m}}\n- target: {kind: Service}\n  patch: |-\n    - op: add\n      path: /spec/type\n      value: ClusterIP\n",
    )
    .expect("overlay kustomization");
    std::fs::write(
        overlay.join("extra.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n",
    )
    .expect("extra");
    overlay
}

/// Times both sides on the generated CRD bundle and checks they build the same objects.
fn compare_crd_bundle(this: &Path, kustomize: &Path) {
    let generated = tempfile::tempdir().expect("a temporary directory");
    let (dir, lines) = write_crd_bundle(generated.path());
    assert!(lines >= 50_000, "the bundle has only {lines} lines");
    let (mut ours, mut theirs) = (Totals::default(), Totals::default());
    for _ in 0..RUNS {
        ours.add(measure(
            Command::new(this)
                .arg("--child")
                .arg(&dir)
                .arg(generated.path()),
        ));
        theirs.add(measure(Command::new(kustomize).arg("build").arg(&dir)));
    }
    report(
        &format!("CRD bundle: {CRDS} CRDs, {lines} lines (median of {RUNS} runs)"),
        &ours,
        &theirs,
    );
    let reference = Command::new(kustomize)
        .arg("build")
        .arg(&dir)
        .output()
        .expect("running kustomize");
    let reference =
        sluice_kustomize::parse_yaml_stream(&String::from_utf8_lossy(&reference.stdout))
            .expect("kustomize output parses");
    let options = BuildOptions {
        root: Some(generated.path().to_path_buf()),
        ..BuildOptions::default()
    };
    let built = build_with(&dir, &options).expect("the CRD bundle builds");
    println!("  outputs identical to kustomize: {}", built == reference);
}

/// Writes a kustomization over one file of [`CRDS`] CRDs with deep schemas; returns its
/// directory and the file's line count.
fn write_crd_bundle(root: &Path) -> (PathBuf, usize) {
    let dir = root.join("crds");
    std::fs::create_dir_all(&dir).expect("crds dir");
    let mut bundle = String::new();
    for index in 0..CRDS {
        write!(
            bundle,
            "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets{index}.example.com\nspec:\n  group: example.com\n  names:\n    kind: Widget{index}\n    plural: widgets{index}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n"
        )
        .expect("formatting a CRD");
        write_schema(&mut bundle, SCHEMA_DEPTH, 8);
    }
    let lines = bundle.lines().count();
    std::fs::write(dir.join("crds.yaml"), bundle).expect("writing the bundle");
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources:\n- crds.yaml\nlabels:\n- pairs: {app.kubernetes.io/part-of: widgets}\ncommonAnnotations: {owner: platform}\n",
    )
    .expect("bundle kustomization");
    (dir, lines)
}

/// An object schema `depth` levels deep at `indent` spaces, [`SCHEMA_FAN_OUT`] properties each.
fn write_schema(out: &mut String, depth: usize, indent: usize) {
    let pad = " ".repeat(indent);
    if depth == 0 {
        write!(
            out,
            "{pad}type: string\n{pad}description: A leaf value with a description long enough to be realistic.\n{pad}maxLength: 253\n"
        )
        .expect("formatting a leaf");
        return;
    }
    write!(
        out,
        "{pad}type: object\n{pad}description: Nested settings at depth {depth}.\n{pad}properties:\n"
    )
    .expect("formatting an object");
    for field in 0..SCHEMA_FAN_OUT {
        writeln!(out, "{pad}  field{field}:").expect("formatting a property");
        write_schema(out, depth - 1, indent + 4);
    }
}
