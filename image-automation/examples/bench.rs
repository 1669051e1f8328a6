//! The real image-automation-controller binary against the real apiserver and git server: one
//! repository with 500 marked files (markers spread over 100 ImagePolicies), 100
//! ImageUpdateAutomations created at once, each selecting its own policy and pushing to its own
//! branch. Prints wall time until every automation pushed, per-object percentiles, controller
//! CPU and peak RSS.
//!
//! `cargo build --release -p image-automation --bins && cargo run --release -p image-automation --example automation-bench`

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_api::image::{ImagePolicy, ImageUpdateAutomation};
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::procfs::mib;
use sluice_e2e::bench::{
    ControllerProcess, PassthroughArgs, Percentiles, Report, first_seen, print_step_summary,
    profile_of, secs, sibling_binary,
};
use sluice_e2e::git::GitServer;

const ROUND_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const CLIENT_CONCURRENCY: usize = 16;
const REPO: &str = "fleet";

/// Benchmark image-automation-controller runs.
#[derive(Debug, Parser)]
struct Args {
    /// ImageUpdateAutomations (and ImagePolicies, one each).
    #[arg(long, default_value_t = 100)]
    automations: usize,

    /// Marked files in the repository.
    #[arg(long, default_value_t = 500)]
    files: usize,

    /// The controller's --concurrent (Flux's default is 4).
    #[arg(long, default_value_t = 4)]
    concurrent: u16,

    #[command(flatten)]
    passthrough: PassthroughArgs,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let binary = sibling_binary("image-automation")?;
    eprintln!("using {}", binary.display());
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("iua-bench").await?;
    let client = plane.client().await?;
    let git = GitServer::builder().basic_auth("bot", "bench").start()?;
    git.create_repo(REPO)?;
    let files: Vec<(String, String)> = (0..args.files)
        .map(|i| {
            let policy = i % args.automations;
            let text = format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/org/app-{policy}:1.0.0 # {{\"$imagepolicy\": \"{namespace}:p{policy}\"}}\n"
            );
            (format!("apps/app-{i}.yaml"), text)
        })
        .collect();
    git.commit(REPO, "main", files, "fleet")?;
    create_source(&client, &namespace, &git.http_url(REPO)).await?;
    create_policies(&client, &namespace, args.automations).await?;

    let mut flags = vec![format!("--concurrent={}", args.concurrent)];
    flags.extend(args.passthrough.to_flags());
    let mut controller =
        ControllerProcess::spawn(&binary, plane.kubeconfig_path(), &namespace, &flags)?;
    let api: Api<ImageUpdateAutomation> = Api::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    stream::iter(0..args.automations)
        .map(|i| create_automation(&api, i))
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let created = started.elapsed();
    let watch = tokio::spawn(first_seen(
        api.clone(),
        args.automations,
        started,
        ROUND_TIMEOUT,
        pushed,
    ));
    let runs = controller.supervise(watch).await?;
    let wall = started.elapsed();
    let mut report = Report::default();
    report.add("binary profile", profile_of(&binary));
    report.add("automations", args.automations);
    report.add("marked files", args.files);
    report.add("--concurrent", args.concurrent);
    report.add("created in (s)", secs(created));
    report.add("creation to all pushed (s)", secs(wall));
    report.add("per object", Percentiles::of(runs.into_values()));
    report.add(
        "controller CPU incl. git (s)",
        format!("{:.2}", controller.cpu()?.total()),
    );
    report.add(
        "controller peak RSS (MiB)",
        format!("{:.1}", mib(controller.memory_kib("VmHWM")?)),
    );
    report.print("100 automations, one repository");
    print_step_summary(&controller.metrics().await?);
    controller.stop();
    Ok(())
}

fn pushed(object: &ImageUpdateAutomation) -> bool {
    object
        .status
        .as_ref()
        .is_some_and(|s| s.last_push_commit.is_some())
}

async fn create_source(client: &kube::Client, namespace: &str, url: &str) -> Result<()> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "git-auth"},
        "stringData": {"username": "bot", "password": "bench"},
    }))?;
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    let source: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "fleet"},
        "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}},
    }))?;
    Api::<GitRepository>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &source)
        .await?;
    Ok(())
}

/// Policy `p<i>` labelled `policy: p<i>`, selecting `ghcr.io/org/app-<i>:2.0.0`.
async fn create_policies(client: &kube::Client, namespace: &str, count: usize) -> Result<()> {
    let api: Api<ImagePolicy> = Api::namespaced(client.clone(), namespace);
    stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("p{i}");
                let policy: ImagePolicy = serde_json::from_value(json!({
                    "apiVersion": "image.toolkit.fluxcd.io/v1",
                    "kind": "ImagePolicy",
                    "metadata": {"name": name, "labels": {"policy": name}},
                    "spec": {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": ">=1"}}},
                }))?;
                api.create(&PostParams::default(), &policy).await?;
                let status = json!({"status": {"latestRef": {"name": format!("ghcr.io/org/app-{i}"), "tag": "2.0.0"}}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .with_context(|| format!("status of {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn create_automation(api: &Api<ImageUpdateAutomation>, i: usize) -> Result<()> {
    let automation: ImageUpdateAutomation = serde_json::from_value(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageUpdateAutomation",
        "metadata": {"name": format!("auto-{i}")},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "interval": "1h",
            "policySelector": {"matchLabels": {"policy": format!("p{i}")}},
            "git": {
                "commit": {"author": {"name": "bot", "email": "bot@example.com"}},
                "push": {"branch": format!("auto-{i}")},
            },
            "update": {"path": "./apps"},
        },
    }))?;
    api.create(&PostParams::default(), &automation)
        .await
        .with_context(|| format!("creating auto-{i}"))?;
    Ok(())
}
