//! N GitRepositories, each on its own repository of the local git smart-HTTP server, created at
//! once; then the real source-controller binary started as a process. Round "first": until every
//! artifact is stored; round "unchanged": a `requestedAt` annotation on each, until handled.
//!
//! `cargo build --workspace --bins && cargo run -p source-controller --example source-bench -- 100`
//!
//! Git server CPU is this process's reaped-children CPU (cutime+cstime) over the round: the
//! `git http-backend` runs (and the `git upload-pack` they wait for) that the in-process HTTP
//! bridge spawns. The bridge itself runs inside this process and is not included.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sluice_api::meta::RECONCILE_REQUESTED_AT_ANNOTATION;
use sluice_api::source::GitRepository;
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::procfs::{CpuTimes, Proc, mib, reset_peak_rss};
use sluice_e2e::bench::prometheus::ApiRequests;
use sluice_e2e::bench::{
    ControllerProcess, PassthroughArgs, Percentiles, Report, first_seen, print_client_metrics,
    print_step_summary, profile_of, secs, sibling_binary,
};
use sluice_e2e::git::GitServer;
use sluice_e2e::net::free_port;

/// The whole run must finish within this.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long one round may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// API calls made in parallel while setting up or annotating.
const CLIENT_CONCURRENCY: usize = 16;

/// Benchmark source-controller on N GitRepositories created at once.
#[derive(Debug, Parser)]
struct Args {
    /// Number of GitRepositories, each with its own git repository.
    #[arg(default_value_t = 100)]
    repositories: usize,

    /// The controller's --concurrent.
    #[arg(long, default_value_t = 10)]
    concurrent: u16,

    #[command(flatten)]
    passthrough: PassthroughArgs,
}

/// Readings taken when a round starts.
struct RoundStart {
    clock: Instant,
    controller_cpu: CpuTimes,
    bench_cpu: CpuTimes,
    api: ApiRequests,
}

/// What one round cost.
struct Round {
    name: &'static str,
    wall: Duration,
    per_object: Percentiles,
    controller_cpu: CpuTimes,
    peak_rss_kib: u64,
    bench_cpu: CpuTimes,
    git_requests: usize,
    git_fetches: usize,
    api: ApiRequests,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut controller = None;
    let outcome = tokio::time::timeout(OVERALL_TIMEOUT, run(&args, &mut controller))
        .await
        .unwrap_or_else(|_| {
            Err(anyhow!(
                "the benchmark did not finish in {OVERALL_TIMEOUT:?}"
            ))
        });
    if outcome.is_err()
        && let Some(controller) = controller.as_mut()
    {
        eprintln!("source-controller log: {}", controller.keep_log().display());
    }
    outcome
}

async fn run(args: &Args, slot: &mut Option<ControllerProcess>) -> Result<()> {
    let binary = sibling_binary("source-controller")?;
    eprintln!("using {}", binary.display());
    eprintln!("starting the control plane...");
    let plane = ControlPlane::shared().await?;
    args.passthrough.apply_crds(plane).await?;
    let namespace = plane.namespace("bench").await?;
    let client = plane.client().await?;
    let git = GitServer::builder().start()?;
    eprintln!("creating {} git repositories...", args.repositories);
    create_git_repositories(&git, args.repositories)?;
    let api: Api<GitRepository> = Api::namespaced(client.clone(), &namespace);
    create_git_repository_objects(&api, &git, args.repositories).await?;

    let storage = tempfile::tempdir()?;
    let storage_port = free_port()?;
    let mut flags = vec![
        format!("--concurrent={}", args.concurrent),
        format!("--storage-path={}", storage.path().display()),
        format!("--storage-addr=127.0.0.1:{storage_port}"),
        format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
    ];
    flags.extend(args.passthrough.to_flags());

    git.clear_requests();
    let start = round_start(&client, None).await?;
    let watch = tokio::spawn(first_seen(
        api.clone(),
        args.repositories,
        start.clock,
        ROUND_TIMEOUT,
        has_current_artifact,
    ));
    let controller = slot.insert(ControllerProcess::spawn(
        &binary,
        plane.kubeconfig_path(),
        &namespace,
        &flags,
    )?);
    eprintln!(
        "controller started (pid {}), round first...",
        controller.pid()
    );
    let ready = controller.supervise(watch).await?;
    let first = finish_round("first", start, &ready, controller, &git, &client).await?;

    let peak_reset = reset_peak_rss(Proc::Pid(controller.pid()));
    git.clear_requests();
    let token = format!("bench-{}", unix_nanos());
    let start = round_start(&client, Some(controller)).await?;
    let handled = {
        let token = token.clone();
        move |repository: &GitRepository| handled_request(repository, &token)
    };
    let watch = tokio::spawn(first_seen(
        api.clone(),
        args.repositories,
        start.clock,
        ROUND_TIMEOUT,
        handled,
    ));
    eprintln!("round unchanged: annotating with requestedAt={token}...");
    request_reconciles(&api, args.repositories, &token).await?;
    let handled = controller.supervise(watch).await?;
    let unchanged = finish_round("unchanged", start, &handled, controller, &git, &client).await?;
    let metrics = controller.metrics().await?;
    controller.stop();

    let profile = profile_of(&binary);
    for round in [&first, &unchanged] {
        print_round(args, &profile, round, peak_reset);
    }
    print_client_metrics(&metrics);
    print_step_summary(&metrics);
    for round in [&first, &unchanged] {
        print_result_line(args, &profile, round);
    }
    Ok(())
}

fn repository_name(index: usize) -> String {
    format!("repo-{index}")
}

/// One bare repository per GitRepository, each with a small commit on `main`.
fn create_git_repositories(git: &GitServer, count: usize) -> Result<()> {
    for index in 0..count {
        let name = repository_name(index);
        git.create_repo(&name)?;
        let configmap = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  index: \"{index}\"\n"
        );
        let service = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports: [{{port: 80}}]\n"
        );
        let kustomization = "resources: [configmap.yaml, service.yaml]\n";
        git.commit(
            &name,
            "main",
            [
                ("deploy/configmap.yaml", configmap),
                ("deploy/service.yaml", service),
                ("deploy/kustomization.yaml", kustomization.to_owned()),
                ("README.md", format!("# {name}\n")),
            ],
            "initial",
        )?;
    }
    Ok(())
}

async fn create_git_repository_objects(
    api: &Api<GitRepository>,
    git: &GitServer,
    count: usize,
) -> Result<()> {
    stream::iter(0..count)
        .map(|index| {
            let name = repository_name(index);
            let object = serde_json::from_value::<GitRepository>(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": name},
                "spec": {"url": git.http_url(&name), "interval": "1h", "ref": {"branch": "main"}},
            }));
            async move {
                api.create(&PostParams::default(), &object?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn request_reconciles(api: &Api<GitRepository>, count: usize, token: &str) -> Result<()> {
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT_ANNOTATION: token}}});
    stream::iter(0..count)
        .map(|index| {
            let patch = &patch;
            async move {
                let name = repository_name(index);
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CLIENT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Ready at the current generation with an artifact.
fn has_current_artifact(repository: &GitRepository) -> bool {
    repository.status.as_ref().is_some_and(|status| {
        status.artifact.is_some()
            && status.observed_generation == repository.metadata.generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn handled_request(repository: &GitRepository, token: &str) -> bool {
    repository
        .status
        .as_ref()
        .and_then(|status| status.last_handled_reconcile_at.as_deref())
        == Some(token)
}

async fn round_start(
    client: &kube::Client,
    controller: Option<&ControllerProcess>,
) -> Result<RoundStart> {
    let api = ApiRequests::scrape(client).await?;
    let controller_cpu = controller.map(|c| c.cpu()).transpose()?;
    Ok(RoundStart {
        clock: Instant::now(),
        controller_cpu: controller_cpu.unwrap_or_default(),
        bench_cpu: CpuTimes::of(Proc::Myself)?,
        api,
    })
}

async fn finish_round(
    name: &'static str,
    start: RoundStart,
    done: &BTreeMap<String, Duration>,
    controller: &ControllerProcess,
    git: &GitServer,
    client: &kube::Client,
) -> Result<Round> {
    let wall = start.clock.elapsed();
    let requests = git.requests();
    Ok(Round {
        name,
        wall,
        per_object: Percentiles::of(done.values().copied()),
        controller_cpu: controller.cpu()?.since(&start.controller_cpu),
        peak_rss_kib: controller.memory_kib("VmHWM")?,
        bench_cpu: CpuTimes::of(Proc::Myself)?.since(&start.bench_cpu),
        git_requests: requests.len(),
        git_fetches: requests.iter().filter(|r| r.is_fetch()).count(),
        api: ApiRequests::scrape(client).await?.since(&start.api),
    })
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

fn print_round(args: &Args, profile: &str, round: &Round, peak_reset: bool) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut report = Report::default();
    report.add("controller build", profile);
    report.add("machine cores", cores);
    report.add("git repositories", args.repositories);
    report.add("concurrent", args.concurrent);
    report.add("controller flags", args.passthrough.to_flags().join(" "));
    report.add("all done s", secs(round.wall));
    report.add("done per git repository", round.per_object);
    report.add(
        "controller cpu s (user+system)",
        format!("{:.2}", round.controller_cpu.own()),
    );
    report.add(
        "controller children cpu s",
        format!("{:.2}", round.controller_cpu.children()),
    );
    let peak_note = if round.name == "first" || peak_reset {
        ""
    } else {
        " (not reset: since start)"
    };
    report.add(
        format!("controller peak rss MiB{peak_note}"),
        format!("{:.1}", mib(round.peak_rss_kib)),
    );
    report.add(
        "git server cpu s (http-backend + upload-pack)",
        format!("{:.2}", round.bench_cpu.children()),
    );
    report.add(
        "bench process own cpu s (watch, git HTTP bridge)",
        format!("{:.2}", round.bench_cpu.own()),
    );
    report.add("git http requests", round.git_requests);
    report.add("git pack fetches", round.git_fetches);
    report.extend(round.api.report("apiserver ", args.repositories, 6));
    if round.name == "unchanged" {
        report.add(
            "apiserver note",
            "includes the bench's own PATCH per GitRepository (the annotation)",
        );
    }
    report.print(&format!("source-controller bench, round {}", round.name));
}

fn print_result_line(args: &Args, profile: &str, round: &Round) {
    println!(
        "RESULT | source-controller {profile}, N={}, --concurrent={}, round {} | all done {} s | per GitRepository p50 {} / p90 {} / max {} s | controller CPU {:.1} s (git children {:.1} s) | peak RSS {:.1} MiB | git server CPU {:.1} s, {} requests, {} pack fetches | {} API requests ({:.1}/repo) |",
        args.repositories,
        args.concurrent,
        round.name,
        secs(round.wall),
        secs(round.per_object.p50),
        secs(round.per_object.p90),
        secs(round.per_object.max),
        round.controller_cpu.total(),
        round.controller_cpu.children(),
        mib(round.peak_rss_kib),
        round.bench_cpu.children(),
        round.git_requests,
        round.git_fetches,
        round.api.total_requests(),
        round.api.total_requests() / args.repositories.max(1) as f64,
    );
}
