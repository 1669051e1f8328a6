//! The local demo: the embedded control plane in nodes mode, a git server with a demo repository,
//! source-controller and kustomize-controller as processes, and a GitRepository with dev and prod
//! Kustomizations. Prints their status and how to push a change; Ctrl-C stops everything.

use std::process::ExitCode;

use anyhow::Context;
use sluice_e2e::demo::Demo;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sluice-dev: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let demo = tokio::select! {
        demo = start() => demo?,
        signal = stop_requested() => {
            signal?;
            eprintln!("interrupted during start-up; stopping");
            return Ok(());
        }
    };
    let result = stop_requested().await;
    eprintln!("stopping the controllers, the git server and the control plane...");
    drop(demo);
    eprintln!("stopped");
    result
}

async fn start() -> anyhow::Result<Demo> {
    let demo = Demo::start(|step| eprintln!("{step}...")).await?;
    eprintln!("waiting until the dev and prod Kustomizations are Ready...");
    demo.wait_until_ready().await?;
    println!();
    println!("Sluice demo is running:");
    println!(
        "{}",
        demo.status_table().await.context("reading the status")?
    );
    println!("{}", demo.instructions()?);
    Ok(demo)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_requested() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("listening for Ctrl-C"),
        _ = terminate.recv() => Ok(()),
    }
}
