//! The randomized fault campaign: N seeded runs of pushes and faults against our
//! source-controller and kustomize-controller, each checked against the last good revision.
//! Prints runs, steps by kind, violations and the seed of every failing run.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use sluice_e2e::ControlPlane;
use sluice_e2e::campaign::model::{Kind, run_seed};
use sluice_e2e::campaign::{RunReport, Settings, run_one};
use sluice_e2e::git::GitServer;

/// Randomized fault campaign against source-controller and kustomize-controller.
#[derive(Parser, Debug)]
#[command(name = "fault-campaign")]
struct Args {
    /// Number of runs.
    #[arg(long, default_value_t = 200)]
    runs: u64,
    /// Campaign seed; run i uses a seed derived from it (printed per run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run only the run with this seed (as printed by a failing run).
    #[arg(long)]
    replay: Option<u64>,
    /// Stop at the first failing run.
    #[arg(long)]
    fail_fast: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match campaign(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("fault-campaign: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the campaign; `Ok(false)` when a run found a violation or failed.
async fn campaign(args: Args) -> anyhow::Result<bool> {
    let seeds: Vec<u64> = match args.replay {
        Some(seed) => vec![seed],
        None => (0..args.runs).map(|i| run_seed(args.seed, i)).collect(),
    };
    eprintln!("starting the control plane (API only) and the git server...");
    let plane = ControlPlane::shared()
        .await
        .context("starting the control plane")?;
    let git = GitServer::builder()
        .start()
        .context("starting the git server")?;
    let settings = Settings::default();
    let started = Instant::now();
    let mut summary = Summary::default();
    for (i, &seed) in seeds.iter().enumerate() {
        let result = run_one(plane, &git, seed, &settings).await;
        let failed = summary.add(i + 1, seeds.len(), seed, result);
        if failed && args.fail_fast {
            break;
        }
    }
    summary.print(started.elapsed());
    Ok(summary.failed_seeds.is_empty())
}

/// Totals over the runs.
#[derive(Default)]
struct Summary {
    runs: usize,
    steps: BTreeMap<Kind, usize>,
    violations: usize,
    times: Vec<Duration>,
    failed_seeds: Vec<u64>,
}

impl Summary {
    /// Adds a run's result and prints its line; returns whether the run failed.
    fn add(
        &mut self,
        index: usize,
        total: usize,
        seed: u64,
        result: sluice_e2e::Result<RunReport>,
    ) -> bool {
        self.runs += 1;
        let report = match result {
            Ok(report) => report,
            Err(error) => {
                println!("run {index}/{total} seed {seed}: ERROR {error}");
                self.violations += 1;
                self.failed_seeds.push(seed);
                return true;
            }
        };
        for (kind, n) in &report.steps {
            *self.steps.entry(*kind).or_insert(0) += n;
        }
        self.times.push(report.elapsed);
        let steps: usize = report.steps.values().sum();
        println!(
            "run {index}/{total} seed {seed} ns {}: {steps} steps, {:.1} s, {} violations",
            report.namespace,
            report.elapsed.as_secs_f64(),
            report.violations.len()
        );
        if report.violations.is_empty() {
            return false;
        }
        self.violations += report.violations.len();
        for violation in &report.violations {
            println!("  VIOLATION {violation}");
        }
        println!("{}", report.logs);
        println!("  logs kept in {}", report.dir.display());
        println!("  replay: fault-campaign --replay {seed}");
        self.failed_seeds.push(seed);
        true
    }

    fn print(&self, elapsed: Duration) {
        let mut times = self.times.clone();
        times.sort();
        let at = |q: f64| {
            let i = ((times.len() as f64 - 1.0) * q).round() as usize;
            times.get(i).map(|d| d.as_secs_f64()).unwrap_or_default()
        };
        println!();
        println!("runs: {}", self.runs);
        let total: usize = self.steps.values().sum();
        println!("steps injected: {total}");
        for (kind, n) in &self.steps {
            println!("  {kind:?}: {n}");
        }
        println!("violations: {}", self.violations);
        println!(
            "time per run: p50 {:.1} s, p90 {:.1} s, max {:.1} s; campaign {:.0} s",
            at(0.5),
            at(0.9),
            at(1.0),
            elapsed.as_secs_f64()
        );
        if !self.failed_seeds.is_empty() {
            println!(
                "failing seeds (replay with --replay <seed>): {:?}",
                self.failed_seeds
            );
        }
    }
}
