//! Flux's "Mean Time To Production" shape: N podinfo-shaped apps (GitRepository + Kustomization
//! with `wait: true`) created at once, then the real kustomize-controller binary started as a
//! process; prints time until all are Ready, its CPU, memory, reconciles and apiserver requests,
//! then drift-correction latency.
//!
//! `cargo build --workspace --bins && cargo run -p kustomize-controller --example bench -- 100`
//! (release: `cargo build --release --bins` and `cargo run --release … --example bench`).

mod drift;
mod workload;

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use clap::Parser;
use kube::api::Api;
use sluice_api::kustomize::Kustomization;
use sluice_e2e::ControlPlane;
use sluice_e2e::bench::procfs::{CpuTimes, mib};
use sluice_e2e::bench::prometheus::{self, ApiRequests};
use sluice_e2e::bench::{
    ControllerProcess, PassthroughArgs, Percentiles, Report, first_seen, print_client_metrics,
    print_step_summary, profile_of, secs, sibling_binary,
};

/// The whole run, control plane start-up included, must finish within this.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long after all-Ready the idle RSS is read.
const IDLE_WAIT: Duration = Duration::from_secs(10);

/// Benchmark kustomize-controller on N podinfo-shaped apps created at once.
#[derive(Debug, Parser)]
struct Args {
    /// Number of apps (one GitRepository and one Kustomization each).
    #[arg(default_value_t = 100)]
    apps: usize,

    /// The controller's --concurrent.
    #[arg(long, default_value_t = 20)]
    concurrent: u16,

    /// Skip the drift-correction phase.
    #[arg(long)]
    skip_drift: bool,

    #[command(flatten)]
    passthrough: PassthroughArgs,
}

/// What was measured at the moment every Kustomization was first seen Ready.
struct AllReady {
    wall: Duration,
    per_object: Percentiles,
    cpu: CpuTimes,
    peak_rss_kib: u64,
    api: ApiRequests,
    metrics: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
        eprintln!(
            "kustomize-controller log: {}",
            controller.keep_log().display()
        );
    }
    outcome
}

async fn run(args: &Args, slot: &mut Option<ControllerProcess>) -> Result<()> {
    let binary = sibling_binary("kustomize-controller")?;
    eprintln!("using {}", binary.display());
    eprintln!("starting the control plane (nodes mode)...");
    let plane = ControlPlane::shared_with_nodes().await?;
    args.passthrough.apply_crds(plane).await?;
    let namespace = plane.namespace("bench").await?;
    let client = plane.client().await?;
    let server = workload::ArtifactServer::start().await?;
    eprintln!("creating {} apps in {namespace}...", args.apps);
    workload::create_apps(&client, &namespace, &server, args.apps).await?;

    let cache = tempfile::tempdir()?;
    let mut flags = vec![
        format!("--concurrent={}", args.concurrent),
        format!("--artifact-cache-dir={}", cache.path().display()),
    ];
    flags.extend(args.passthrough.to_flags());
    let api_before = ApiRequests::scrape(&client).await?;
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), &namespace);
    let clock = Instant::now();
    let watch = tokio::spawn(first_seen(
        kustomizations,
        args.apps,
        clock,
        OVERALL_TIMEOUT,
        workload::is_ready,
    ));
    let controller = slot.insert(ControllerProcess::spawn(
        &binary,
        plane.kubeconfig_path(),
        &namespace,
        &flags,
    )?);
    eprintln!(
        "controller started (pid {}), waiting for all Ready...",
        controller.pid()
    );
    let ready = controller.supervise(watch).await?;
    let all_ready = AllReady {
        wall: clock.elapsed(),
        per_object: Percentiles::of(ready.values().copied()),
        cpu: controller.cpu()?,
        peak_rss_kib: controller.memory_kib("VmHWM")?,
        api: ApiRequests::scrape(&client).await?.since(&api_before),
        metrics: controller.metrics().await?,
    };
    eprintln!(
        "all Ready after {}s; idling {IDLE_WAIT:?}...",
        secs(all_ready.wall)
    );
    tokio::time::sleep(IDLE_WAIT).await;
    let idle_rss_kib = controller.memory_kib("VmRSS")?;
    let drift = if args.skip_drift {
        None
    } else {
        eprintln!("drift phase: {} out-of-band edits...", drift::EDITS);
        Some(drift::measure(&client, &namespace, args.apps).await?)
    };
    let final_metrics = controller.metrics().await?;
    controller.stop();

    let profile = profile_of(&binary);
    print_figures(args, &profile, &all_ready, idle_rss_kib, drift.as_ref());
    print_client_metrics(&final_metrics);
    print_step_summary(&final_metrics);
    print_result_line(args, &profile, &all_ready, idle_rss_kib, drift.as_ref());
    Ok(())
}

fn reconciles(metrics: &str) -> (f64, f64, f64) {
    let total = prometheus::sum(metrics, "controller_runtime_reconcile_total");
    let errors = prometheus::sum(metrics, "controller_runtime_reconcile_errors_total");
    let per_object =
        prometheus::sum_by_label(metrics, "gotk_reconcile_duration_seconds_count", "name");
    let max = per_object.values().copied().fold(0.0, f64::max);
    (total, errors, max)
}

fn print_figures(
    args: &Args,
    profile: &str,
    ready: &AllReady,
    idle_rss_kib: u64,
    drift: Option<&Percentiles>,
) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (total, errors, max_per_object) = reconciles(&ready.metrics);
    let mut report = Report::default();
    report.add("controller build", profile);
    report.add("machine cores", cores);
    report.add("apps", args.apps);
    report.add("concurrent", args.concurrent);
    report.add("controller flags", args.passthrough.to_flags().join(" "));
    report.add("all ready s", secs(ready.wall));
    report.add("ready per kustomization", ready.per_object);
    report.add("reconciles total", total);
    report.add(
        "reconciles per kustomization",
        format!("{:.2}", total / args.apps.max(1) as f64),
    );
    report.add("reconciles max of one kustomization", max_per_object);
    report.add("reconcile errors", errors);
    report.add(
        "controller cpu s (user+system)",
        format!("{:.2}", ready.cpu.own()),
    );
    report.add(
        "controller children cpu s",
        format!("{:.2}", ready.cpu.children()),
    );
    report.add(
        "controller peak rss MiB",
        format!("{:.1}", mib(ready.peak_rss_kib)),
    );
    report.add(
        "controller idle rss MiB (10 s later)",
        format!("{:.1}", mib(idle_rss_kib)),
    );
    report.extend(ready.api.report("apiserver ", args.apps, 8));
    if let Some(drift) = drift {
        report.add("drift edits", drift::EDITS);
        report.add("drift correction", drift);
    }
    report.print("kustomize-controller bench (apiserver counts include kube-controller-manager, scheduler and kwok)");
}

fn print_result_line(
    args: &Args,
    profile: &str,
    ready: &AllReady,
    idle_rss_kib: u64,
    drift: Option<&Percentiles>,
) {
    let (total, _, _) = reconciles(&ready.metrics);
    let drift = drift.map_or_else(
        || "drift skipped".to_owned(),
        |d| format!("drift p50 {:.0} / p95 {:.0} ms", ms(d.p50), ms(d.p95)),
    );
    println!(
        "RESULT | kustomize-controller {profile}, N={}, --concurrent={} | all Ready {} s | per Kustomization p50 {} / p90 {} / max {} s | {total} reconciles | CPU {:.1} s | peak RSS {:.1} MiB, idle {:.1} MiB | {} API requests ({:.1}/app) | {drift} |",
        args.apps,
        args.concurrent,
        secs(ready.wall),
        secs(ready.per_object.p50),
        secs(ready.per_object.p90),
        secs(ready.per_object.max),
        ready.cpu.total(),
        mib(ready.peak_rss_kib),
        mib(idle_rss_kib),
        ready.api.total_requests(),
        ready.api.total_requests() / args.apps.max(1) as f64,
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
