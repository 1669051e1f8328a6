//! Prints scale figures (not a timed test): reconcile 100 and 1000 GitRepositories against the
//! local git server (first clone round, then an unchanged round), and the first artifact of a
//! large repository (~50k files, long history).
//!
//! Run: `cargo bench -p source-controller --bench reconcile_scale`. Peak RSS is this process's
//! VmHWM (controller plus the in-process git HTTP bridge), reset before each round; the git and
//! apiserver child processes are not included.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::git::GitServer;
use sluice_e2e::poll::eventually;
use sluice_runtime::{RuntimeContext, RuntimeFlags, Shutdown};
use source_controller::{SourceContext, Storage, StorageConfig, run_controllers};

#[derive(Parser)]
struct BenchFlags {
    #[command(flatten)]
    flags: RuntimeFlags,
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Controller {
    client: Client,
    namespace: String,
    shutdown: Shutdown,
    _storage: tempfile::TempDir,
}

async fn start_controller(client: Client, namespace: String) -> Result<Controller> {
    let storage_dir = tempfile::tempdir()?;
    let storage = Arc::new(Storage::new(StorageConfig {
        root: storage_dir.path().to_owned(),
        advertised_address: "127.0.0.1:9090".into(),
        retention_ttl: Duration::from_secs(60),
        retention_records: 2,
        max_artifact_size: 100 * 1024 * 1024,
    })?);
    let flags = BenchFlags::parse_from([
        "bench",
        "--watch-all-namespaces=false",
        &format!("--runtime-namespace={namespace}"),
        "--concurrent=10",
    ])
    .flags;
    let shutdown = Shutdown::new();
    let (runtime, _tasks) =
        RuntimeContext::with_client("source-controller", client.clone(), flags, shutdown.clone())?;
    tokio::spawn(run_controllers(Arc::new(SourceContext {
        runtime,
        storage,
        deny_private_urls: false,
        bucket_limits: Default::default(),
        helm_limits: Default::default(),
        helm_index_cache: Default::default(),
    })));
    Ok(Controller {
        client,
        namespace,
        shutdown,
        _storage: storage_dir,
    })
}

async fn wait_all(
    api: &Api<GitRepository>,
    count: usize,
    check: impl Fn(&GitRepository) -> bool,
) -> Result<()> {
    let what = format!("{count} GitRepositories finished");
    eventually(
        &what,
        Duration::from_secs(1800),
        Duration::from_millis(500),
        || async {
            let done = api
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|o| check(o))
                .count();
            if done >= count {
                Ok(())
            } else {
                Err(anyhow!("only {done}/{count} finished"))
            }
        },
    )
    .await?;
    Ok(())
}

fn ready_at_generation(object: &GitRepository) -> bool {
    object.status.as_ref().is_some_and(|s| {
        s.observed_generation == object.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn scale_round(control_plane: &ControlPlane, server: &GitServer, count: usize) -> Result<()> {
    let client = control_plane.client().await?;
    let namespace = control_plane.namespace(&format!("bench-{count}")).await?;
    let controller = start_controller(client.clone(), namespace.clone()).await?;
    let api: Api<GitRepository> = Api::namespaced(controller.client.clone(), &controller.namespace);
    let url = server.http_url("app");
    server.clear_requests();
    reset_peak_rss();
    let started = Instant::now();
    stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let object: Result<GitRepository, _> = serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": format!("app-{i}")},
                "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}},
            }));
            async move {
                api.create(&PostParams::default(), &object?)
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(20)
        .try_collect::<Vec<_>>()
        .await?;
    wait_all(&api, count, ready_at_generation).await?;
    let first = started.elapsed();
    let first_rss = peak_rss_mib();
    let first_fetches = server.fetches();

    server.clear_requests();
    reset_peak_rss();
    let started = Instant::now();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "bench-unchanged"}}});
    stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let patch = patch.clone();
            async move {
                api.patch(
                    &format!("app-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(20)
        .try_collect::<Vec<_>>()
        .await?;
    wait_all(&api, count, |o| {
        o.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("bench-unchanged")
    })
    .await?;
    let unchanged = started.elapsed();
    println!(
        "{count:>5} GitRepositories: first round {:>7.1}s, peak RSS {:>6.1} MiB, {first_fetches} pack fetches | unchanged round {:>7.1}s, peak RSS {:>6.1} MiB, {} pack fetches, {} upload-pack POSTs",
        first.as_secs_f64(),
        first_rss,
        unchanged.as_secs_f64(),
        peak_rss_mib(),
        server.fetches(),
        server.upload_pack_posts(),
    );
    controller.shutdown.trigger();
    Ok(())
}

/// Writes a repository with `files` files and `history` commits straight into a bare repo.
fn build_large_repo(bare: &std::path::Path, files: usize, history: usize) -> Result<()> {
    let mut import = Command::new("git")
        .args(["fast-import", "--quiet"])
        .env("GIT_DIR", bare)
        .stdin(Stdio::piped())
        .spawn()
        .context("running git fast-import")?;
    let mut input = std::io::BufWriter::new(import.stdin.take().context("fast-import stdin")?);
    let stamp = "bench <bench@example.com> 1700000000 +0000";
    writeln!(
        input,
        "commit refs/heads/main\ncommitter {stamp}\ndata 7\ninitial"
    )?;
    for i in 0..files {
        let body = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  key: value-{i}\n"
        );
        writeln!(
            input,
            "M 644 inline dir-{:03}/file-{i}.yaml\ndata {}\n{body}",
            i % 500,
            body.len()
        )?;
    }
    for n in 1..history {
        let body = format!("revision: {n}\n");
        writeln!(
            input,
            "commit refs/heads/main\ncommitter {stamp}\ndata 6\nchange\nM 644 inline history/log-{}.yaml\ndata {}\n{body}",
            n % 100,
            body.len()
        )?;
    }
    drop(input);
    if !import.wait()?.success() {
        bail!("git fast-import failed");
    }
    Ok(())
}

async fn large_repository(control_plane: &ControlPlane, server: &GitServer) -> Result<()> {
    let (files, history) = (50_000, 2_000);
    let bare = server.create_repo("large")?;
    let built = Instant::now();
    build_large_repo(&bare, files, history)?;
    println!(
        "large repository: {files} files, {history} commits, built in {:.1}s",
        built.elapsed().as_secs_f64()
    );
    let client = control_plane.client().await?;
    let namespace = control_plane.namespace("bench-large").await?;
    let controller = start_controller(client.clone(), namespace.clone()).await?;
    let api: Api<GitRepository> = Api::namespaced(client, &namespace);
    reset_peak_rss();
    let started = Instant::now();
    let object: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "large"},
        "spec": {"url": server.http_url("large"), "interval": "1h", "ref": {"branch": "main"}, "timeout": "5m"},
    }))?;
    api.create(&PostParams::default(), &object).await?;
    wait_all(&api, 1, ready_at_generation).await?;
    let size = api
        .get("large")
        .await?
        .status
        .and_then(|s| s.artifact)
        .and_then(|a| a.size)
        .unwrap_or_default();
    println!(
        "large repository first artifact: {:.1}s, peak RSS {:.1} MiB, artifact {:.1} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib(),
        size as f64 / 1024.0 / 1024.0
    );
    controller.shutdown.trigger();
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let control_plane = ControlPlane::shared().await?;
    let server = GitServer::builder().start()?;
    server.create_repo("app")?;
    server.commit(
        "app",
        "main",
        [
            ("deploy/app.yaml", "kind: ConfigMap\n"),
            ("README.md", "bench\n"),
        ],
        "bench",
    )?;
    for count in [100, 1000] {
        scale_round(control_plane, &server, count).await?;
    }
    large_repository(control_plane, &server).await?;
    Ok(())
}
