//! The real image-reflector-controller binary against the real distribution registry and
//! apiserver. Round "big": one ImageRepository on an image with 10,000 tags, from creation to
//! Ready. Round "fleet": 500 ImageRepositories, each on its own image with 50 tags, created at
//! once, until all are Ready. Prints wall time, per-object percentiles, controller CPU, peak RSS
//! and the bytes stored.
//!
//! `cargo build -p image-reflector --bins && cargo run -p image-reflector --example bench`

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, PostParams};
use serde_json::json;
use sluice_api::FluxObject;
use sluice_api::image::ImageRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::procfs::mib;
use sluice_e2e::bench::{
    ControllerProcess, PassthroughArgs, Percentiles, Report, first_seen, print_step_summary,
    profile_of, secs, sibling_binary,
};
use sluice_e2e::registry::{Artifact, OCI_MANIFEST, OciClient, Registry};

/// How long one round may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Registry pushes and API creates in flight at once.
const CLIENT_CONCURRENCY: usize = 16;

/// Benchmark image-reflector-controller scans.
#[derive(Debug, Parser)]
struct Args {
    /// Tags of the one big image.
    #[arg(long, default_value_t = 10_000)]
    big_tags: usize,

    /// ImageRepositories (each on its own image) in the fleet round.
    #[arg(long, default_value_t = 500)]
    repositories: usize,

    /// Tags per image in the fleet round.
    #[arg(long, default_value_t = 50)]
    tags: usize,

    /// The controller's --concurrent (Flux's default is 4).
    #[arg(long, default_value_t = 4)]
    concurrent: u16,

    #[command(flatten)]
    passthrough: PassthroughArgs,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let binary = sibling_binary("image-reflector")?;
    eprintln!("using {}", binary.display());
    let plane = ControlPlane::shared().await?;
    let namespace = plane.namespace("image-bench").await?;
    let api: Api<ImageRepository> = Api::namespaced(plane.client().await?, &namespace);
    let registry = Registry::builder().start()?;
    let client = registry.client()?;
    eprintln!("pushing {} tags...", args.big_tags);
    push_tags(&client, "big/app", &numbered(args.big_tags)).await?;
    eprintln!(
        "pushing {} images x {} tags...",
        args.repositories, args.tags
    );
    let images: Vec<String> = (0..args.repositories)
        .map(|i| format!("fleet/app-{i}"))
        .collect();
    let fleet_tags = numbered(args.tags);
    stream::iter(&images)
        .map(|image| push_tags(&client, image, &fleet_tags))
        .buffer_unordered(CLIENT_CONCURRENCY / 4)
        .try_collect::<Vec<_>>()
        .await?;

    let storage = tempfile::tempdir()?;
    let mut flags = vec![
        format!("--concurrent={}", args.concurrent),
        format!("--storage-path={}", storage.path().display()),
        "--gc-interval=0".to_owned(),
    ];
    flags.extend(args.passthrough.to_flags());
    let mut controller =
        ControllerProcess::spawn(&binary, plane.kubeconfig_path(), &namespace, &flags)?;
    let host = registry.host();

    let started = Instant::now();
    create(&api, "big", &format!("{host}/big/app")).await?;
    let watch = tokio::spawn(first_seen(api.clone(), 1, started, ROUND_TIMEOUT, ready));
    let big = controller.supervise(watch).await?;
    let mut report = Report::default();
    report.add("binary profile", profile_of(&binary));
    report.add("tags", args.big_tags);
    report.add("creation to Ready (s)", secs(started.elapsed()));
    report.add("per object", Percentiles::of(big.into_values()));
    report.add(
        "controller peak RSS (MiB)",
        format!("{:.1}", mib(controller.memory_kib("VmHWM")?)),
    );
    report.print("big: one ImageRepository, one image");

    let cpu_before = controller.cpu()?;
    let started = Instant::now();
    stream::iter(images.iter().enumerate())
        .map(|(i, image)| {
            let api = api.clone();
            let image = format!("{host}/{image}");
            async move { create(&api, &format!("fleet-{i}"), &image).await }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let created = started.elapsed();
    let watch = tokio::spawn(first_seen(
        api.clone(),
        args.repositories + 1,
        started,
        ROUND_TIMEOUT,
        ready,
    ));
    let fleet = controller.supervise(watch).await?;
    let wall = started.elapsed();
    let cpu = controller.cpu()?.since(&cpu_before);
    let mut report = Report::default();
    report.add("ImageRepositories", args.repositories);
    report.add("tags each", args.tags);
    report.add("--concurrent", args.concurrent);
    report.add("created in (s)", secs(created));
    report.add("creation to all Ready (s)", secs(wall));
    report.add("per object", Percentiles::of(fleet.into_values()));
    report.add("controller CPU (s)", format!("{:.2}", cpu.own()));
    report.add(
        "controller peak RSS (MiB)",
        format!("{:.1}", mib(controller.memory_kib("VmHWM")?)),
    );
    report.add(
        "controller RSS now (MiB)",
        format!("{:.1}", mib(controller.memory_kib("VmRSS")?)),
    );
    report.add("bytes stored", stored_bytes(storage.path())?);
    report.print("fleet: ImageRepositories created at once");
    print_step_summary(&controller.metrics().await?);
    controller.stop();
    Ok(())
}

/// `1.0.0` … as `1.<i / 1000>.<i % 1000>`.
fn numbered(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("1.{}.{}", i / 1000, i % 1000))
        .collect()
}

fn ready(object: &ImageRepository) -> bool {
    object
        .condition("Ready")
        .is_some_and(|ready| ready.status == "True")
}

async fn create(api: &Api<ImageRepository>, name: &str, image: &str) -> Result<()> {
    let object: ImageRepository = serde_json::from_value(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": name},
        "spec": {"image": image, "interval": "1h", "insecure": true},
    }))?;
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating ImageRepository {name}"))?;
    Ok(())
}

/// Pushes one small artifact under the first tag and PUTs its manifest under the others.
async fn push_tags(client: &OciClient, repo: &str, tags: &[String]) -> Result<()> {
    let (first, rest) = tags.split_first().ok_or_else(|| anyhow!("no tags"))?;
    let artifact = Artifact::from_files([("app.yaml", "kind: ConfigMap\n")], "bench", "v1")?;
    client.push_artifact(repo, first, &artifact).await?;
    let manifest = client.get_manifest(repo, first).await?;
    stream::iter(rest)
        .map(|tag| client.put_manifest(repo, tag, OCI_MANIFEST, &manifest.bytes))
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Bytes of every tag file under the storage root.
fn stored_bytes(root: &std::path::Path) -> Result<u64> {
    let mut total = 0;
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}
