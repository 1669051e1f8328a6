//! The flux CLI (built from its Go module) against Sluice's controllers and CRDs: get, reconcile,
//! suspend, resume, events, tree, trace, export, build and diff, each checked by what it prints;
//! and `flux check` and `flux version` against Sluice's `deploy/` install with kwok-run pods.

use std::path::Path;
use std::time::Duration;

use sluice_e2e::ControlPlane;
use sluice_e2e::flux::{CliOutput, flux_cli, kubectl_cli};
use sluice_e2e::git::GitServer;
use sluice_e2e::gitops::{APP, AppLoop, Controllers, Scope, main_revision, plain_app};

const FIRST_APPLY: Duration = Duration::from_secs(90);

/// Runs the flux CLI in `namespace`; panics with its output when it fails.
fn flux(plane: &ControlPlane, namespace: &str, args: &[&str]) -> CliOutput {
    let mut all = args.to_vec();
    all.extend(["--namespace", namespace]);
    let output = flux_cli(plane.kubeconfig_path(), &all).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.success,
        "`flux {}` failed:\n{}",
        args.join(" "),
        output.text()
    );
    output
}

/// Asserts that `output` contains each expected text, whitespace runs compared as one space.
fn assert_contains(output: &CliOutput, command: &str, expected: &[&str]) {
    let text = output.text();
    let squeezed = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in expected {
        assert!(
            squeezed(&text).contains(&squeezed(line)),
            "`flux {command}` should print {line:?}; it printed:\n{text}"
        );
    }
}

/// Writes the app's files as committed with `message` under `dir`, for `flux build`/`diff --path`.
fn write_app(dir: &Path, message: &str) -> std::path::PathBuf {
    for (path, content) in plain_app(message) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    dir.join(APP)
}

#[tokio::test]
async fn flux_cli_commands_work_against_sluice_controllers() {
    let plane = ControlPlane::shared_with_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = plane.namespace("flux-cli").await.unwrap();
    let git = GitServer::builder().start().unwrap();
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    let dir = plane.dir().join(format!("{ns}-controllers"));
    let scope = Scope::Namespace(ns.clone());
    let controllers =
        tokio::task::spawn_blocking(move || Controllers::start(&kubeconfig, &dir, scope))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
    let app = AppLoop::create(plane, &ns, &git, "v1", "1m", "1m")
        .await
        .unwrap();
    let sha = git.head(APP, "main").unwrap();
    let revision = main_revision(&sha);
    app.wait_applied(&revision, FIRST_APPLY)
        .await
        .unwrap_or_else(|state| panic!("{state}\n{}", controllers.log_tails()));

    let cli = Cli {
        plane,
        namespace: &ns,
        revision: &revision,
    };
    get_reconcile_suspend_and_resume(&cli, &main_revision(&sha[..8]));
    events_tree_and_trace(&cli);
    export_build_and_diff(&cli, &git.http_url(APP));
}

/// `kubectl apply --server-side -k <dir>` with the control plane's kubeconfig.
fn kubectl_apply_kustomization(plane: &ControlPlane, dir: &Path) {
    let dir = dir.display().to_string();
    let args = ["apply", "--server-side", "-k", dir.as_str()];
    let output = kubectl_cli(plane.kubeconfig_path(), &args).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.success,
        "kubectl apply -k {dir} failed:\n{}",
        output.text()
    );
}

#[tokio::test]
async fn flux_check_and_version_accept_the_sluice_install() {
    let plane = ControlPlane::shared_with_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let kubeconfig = plane.kubeconfig_path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let pre = flux_cli(&kubeconfig, &["check", "--pre"]).unwrap();
        assert!(pre.success, "flux check --pre:\n{}", pre.text());
        assert_contains(&pre, "check --pre", &["prerequisites checks passed"]);
    })
    .await
    .unwrap();
    kubectl_apply_kustomization(plane, &deploy);
    kubectl_apply_kustomization(plane, &deploy.join("default"));

    let check = flux(plane, "flux-system", &["check", "--timeout", "3m"]);
    assert_contains(
        &check,
        "check",
        &[
            "distribution: flux-sluice-v0.1.0",
            "source-controller: deployment ready",
            "kustomize-controller: deployment ready",
            "gitrepositories.source.toolkit.fluxcd.io/v1",
            "kustomizations.kustomize.toolkit.fluxcd.io/v1",
            "all checks passed",
        ],
    );
    let version = flux(plane, "flux-system", &["version"]);
    assert_contains(
        &version,
        "version",
        &[
            "flux: v2.9.5-sluice.test",
            "distribution: flux-sluice-v0.1.0",
            "source-controller: v0.1.0",
            "kustomize-controller: v0.1.0",
        ],
    );
}

/// The flux CLI against one namespace of the control plane, whose app applied `revision`.
struct Cli<'a> {
    plane: &'a ControlPlane,
    namespace: &'a str,
    revision: &'a str,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> CliOutput {
        flux(self.plane, self.namespace, args)
    }
}

/// `short_revision`: `flux get` shortens the checksum to 8 characters.
fn get_reconcile_suspend_and_resume(cli: &Cli, short_revision: &str) {
    let revision = cli.revision;
    let get_sources = cli.run(&["get", "sources", "git"]);
    assert_contains(
        &get_sources,
        "get sources git",
        &[APP, short_revision, "True", "stored artifact for revision"],
    );
    let get_ks = cli.run(&["get", "kustomizations"]);
    assert_contains(
        &get_ks,
        "get kustomizations",
        &[APP, short_revision, "False", "True", "Applied revision"],
    );

    let reconcile = cli.run(&["reconcile", "kustomization", APP, "--with-source"]);
    assert_contains(
        &reconcile,
        "reconcile kustomization --with-source",
        &["fetched revision", "applied revision", revision],
    );

    let suspend = cli.run(&["suspend", "kustomization", APP]);
    assert_contains(&suspend, "suspend kustomization", &["suspended"]);
    let suspended = cli.run(&["get", "kustomizations"]);
    let row = suspended.stdout.lines().find(|line| line.starts_with(APP));
    assert_eq!(
        row.and_then(|line| line.split_whitespace().nth(2)),
        Some("True"),
        "`flux get kustomizations` shows SUSPENDED True:\n{}",
        suspended.text()
    );
    let resume = cli.run(&["resume", "kustomization", APP]);
    assert_contains(
        &resume,
        "resume kustomization",
        &["resumed", "applied revision", revision],
    );
}

/// `flux events`, `flux tree` and `flux trace` on the applied app.
fn events_tree_and_trace(cli: &Cli) {
    let (ns, revision) = (cli.namespace, cli.revision);
    let events = cli.run(&["events", "--for", &format!("Kustomization/{APP}")]);
    assert_contains(
        &events,
        "events",
        &[&format!("Kustomization/{APP}"), "ReconciliationSucceeded"],
    );

    let source_events = cli.run(&["events", "--for", &format!("GitRepository/{APP}")]);
    assert_contains(
        &source_events,
        "events --for GitRepository",
        &[
            "NewArtifact",
            "GitOperationSucceeded",
            "no changes since last reconciliation",
        ],
    );

    let tree = cli.run(&["tree", "kustomization", APP]);
    assert_contains(
        &tree,
        "tree kustomization",
        &[
            &format!("Kustomization/{ns}/{APP}"),
            &format!("ConfigMap/{ns}/{APP}"),
            &format!("Deployment/{ns}/{APP}"),
            &format!("Service/{ns}/{APP}"),
        ],
    );

    let trace = cli.run(&["trace", APP, "--kind", "ConfigMap", "--api-version", "v1"]);
    assert_contains(
        &trace,
        "trace",
        &[
            "Object: ConfigMap/app",
            "Status: Managed by Flux",
            &format!("Kustomization: {APP}"),
            "Path: ./app",
            &format!("GitRepository: {APP}"),
            revision,
        ],
    );
}

/// `flux export`, then `flux build` and `flux diff` of a local copy of the app (repository `url`).
fn export_build_and_diff(cli: &Cli, url: &str) {
    let ns = cli.namespace;
    let export_source = cli.run(&["export", "source", "git", APP]);
    assert_contains(
        &export_source,
        "export source git",
        &[
            "kind: GitRepository",
            &format!("url: {url}"),
            "branch: main",
        ],
    );
    let export_ks = cli.run(&["export", "kustomization", APP]);
    assert_contains(
        &export_ks,
        "export kustomization",
        &["kind: Kustomization", "path: ./app", "prune: true"],
    );

    let local = tempfile::tempdir().unwrap();
    let path = write_app(local.path(), "v1");
    let path = path.to_str().unwrap();
    let build = cli.run(&["build", "kustomization", APP, "--path", path]);
    assert_contains(
        &build,
        "build kustomization",
        &[
            "kind: ConfigMap",
            "message: v1",
            &format!("namespace: {ns}"),
        ],
    );
    let diff_same = cli.run(&["diff", "kustomization", APP, "--path", path]);
    assert!(
        !diff_same.text().contains("drifted"),
        "nothing drifted:\n{}",
        diff_same.text()
    );
    write_app(local.path(), "v2");
    let diff = flux_cli(
        cli.plane.kubeconfig_path(),
        &[
            "diff",
            "kustomization",
            APP,
            "--path",
            path,
            "--namespace",
            ns,
        ],
    )
    .unwrap();
    assert!(
        !diff.success,
        "`flux diff` exits 1 on a difference:\n{}",
        diff.text()
    );
    assert_contains(
        &diff,
        "diff kustomization",
        &[&format!("ConfigMap/{ns}/{APP} drifted"), "v2"],
    );
}
