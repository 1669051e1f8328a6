//! A minimal controller on Sluice's shared runtime: each `Greeting` (`example.sluice.dev/v1alpha1`)
//! writes its message into a ConfigMap and reports `Ready`, like a Flux object.
//!
//! ```sh
//! cargo run -p sluice-runtime --example greeting -- --print-crd | kubectl apply --server-side -f -
//! cargo run -p sluice-runtime --example greeting -- --log-encoding=console \
//!     --metrics-addr=127.0.0.1:18080 --health-addr=127.0.0.1:19440
//! ```

mod greeting;

use anyhow::{Context, bail};
use clap::Parser;
use kube::api::{Api, ListParams};
use kube::{CustomResourceExt, Error};
use sluice_runtime::{RuntimeContext, RuntimeFlags, init_logging};

use greeting::{CONTROLLER_NAME, Greeting};

/// Greeting controller: writes each Greeting's message into a ConfigMap of the same name.
#[derive(Debug, Parser)]
#[command(name = "greeting-controller", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeFlags,

    /// Print the Greeting CRD as JSON (for `kubectl apply -f -`) and exit.
    #[arg(long)]
    print_crd: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_crd {
        println!("{}", serde_json::to_string_pretty(&Greeting::crd())?);
        return Ok(());
    }
    init_logging(cli.runtime.log_level, cli.runtime.log_encoding).context("setting up logging")?;
    let (runtime, tasks) = RuntimeContext::start(CONTROLLER_NAME, cli.runtime)
        .await
        .context("starting the controller runtime")?;
    require_crd(&runtime).await?;
    tracing::info!(controller = CONTROLLER_NAME, "starting");
    greeting::run(&runtime).await;
    runtime.shutdown.trigger();
    runtime.events.flush().await;
    tasks.finished().await;
    Ok(())
}

/// Fails at startup, naming the fix, when the Greeting CRD is not installed.
async fn require_crd(runtime: &RuntimeContext) -> anyhow::Result<()> {
    let greetings: Api<Greeting> = runtime.watched_api();
    match greetings.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(Error::Api(response)) if response.code == 404 => bail!(
            "the Greeting CRD is not installed; install it with `cargo run -p sluice-runtime --example greeting -- --print-crd | kubectl apply --server-side -f -`"
        ),
        Err(error) => Err(error).context("listing Greetings to check the CRD is installed"),
    }
}
